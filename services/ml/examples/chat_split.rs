//! Writes a chat dataset's training and test examples exactly as the
//! engine splits them (by distinct user message, stratified by intent) as
//! JSON lines of `{"text", "intent"}`, so that the baselines of
//! `scripts/bench-chat` learn and are tested on the same messages as the
//! fine-tuned model.
//!
//!   chat_split --data FILE --split 80/0/20 --seed 42 --out DIR

use std::io::Write;
use std::path::PathBuf;

use tenfold_ml::chat::data::ChatSet;
use tenfold_ml::split::SplitSpec;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let data = PathBuf::from(arg(&args, "--data").ok_or("--data FILE (chat JSONL or intent CSV) is required")?);
    let split = SplitSpec::parse(&arg(&args, "--split").unwrap_or_else(|| "80/0/20".into()))?;
    let seed: u64 = arg(&args, "--seed").map_or(Ok(42), |s| s.parse())?;
    let out = PathBuf::from(arg(&args, "--out").ok_or("--out DIR is required")?);
    let set = ChatSet::load(&data, split, seed)?;
    std::fs::create_dir_all(&out)?;
    for (name, rows) in [("train", set.distinct(&set.train)), ("test", set.distinct(&set.test))] {
        let mut file = std::io::BufWriter::new(std::fs::File::create(out.join(format!("{name}.jsonl")))?);
        for i in rows {
            let e = &set.examples[i];
            writeln!(file, "{}", serde_json::json!({ "text": e.text, "intent": set.intents[e.intent] }))?;
        }
        file.flush()?;
    }
    Ok(())
}
