//! A chat dataset read into examples and split.
//!
//! The file first goes through the upload validator (its words are the
//! error). Each conversation becomes one example: the text is its last user
//! turns (what the customer said, newest last), the label its `intent`, the
//! reply its last assistant message; intent tables give text, intent and
//! response directly. Splits keep every copy of a message together (the same
//! question with several approved replies is one message): a model is never
//! tested on a message it was trained on. Messages are split stratified by
//! intent, by seeded rank, like the platform's stored splits.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;
use tenfold_datasets::splits::rank;
use tenfold_datasets::{Family, Limits, validate_file};

use crate::artifact::sha256_file;
use crate::split::SplitSpec;
use crate::{MlError, Result};

/// How many user turns of a conversation are read (newest last); the
/// tokenizer then keeps the newest tokens that fit the model.
pub const USER_TURNS: usize = 3;
const PROBLEMS_SHOWN: usize = 3;

#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    pub intent: usize,
    pub reply: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ChatSet {
    pub intents: Vec<String>,
    pub examples: Vec<Example>,
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
    pub file: String,
    pub sha256: String,
}

fn invalid(path: &Path, summary: String) -> MlError {
    MlError::InvalidDataset { path: path.into(), family: "chat", summary }
}

fn content<'v>(m: &'v Value, role: &str) -> Option<&'v str> {
    if m.get("role")?.as_str()? == role { m.get("content")?.as_str() } else { None }
}

/// What the model reads of a conversation: its last user turns, newest
/// last (a served conversation is answered after its newest message).
pub fn user_turns(messages: &[Value]) -> Option<String> {
    let turns: Vec<&str> = messages.iter().filter_map(|m| content(m, "user")).collect();
    let turns = &turns[turns.len().saturating_sub(USER_TURNS)..];
    (!turns.is_empty()).then(|| turns.join("\n"))
}

/// A training conversation: the user turns before its last reply, and
/// that reply.
pub fn conversation(value: &Value) -> Option<(String, Option<String>)> {
    let messages = value.get("messages")?.as_array()?;
    let last_reply = messages.iter().rposition(|m| content(m, "assistant").is_some());
    let text = user_turns(&messages[..last_reply.unwrap_or(messages.len())])?;
    let reply = last_reply.and_then(|i| content(&messages[i], "assistant")).map(str::to_owned);
    Some((text, reply))
}

/// One row of a validated file: text, intent, reply.
type Row = (String, Option<String>, Option<String>);

fn rows(path: &Path) -> Result<Vec<Row>> {
    let lower = path.to_string_lossy().to_ascii_lowercase();
    let file = File::open(path).map_err(MlError::io(path))?;
    let mut out = vec![];
    if lower.ends_with(".csv") {
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(file);
        let header: Vec<String> =
            reader.headers().map_err(|e| invalid(path, e.to_string()))?.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
        let col = |name: &str| header.iter().position(|h| h == name);
        let (text, intent, response) = (col("text"), col("intent"), col("response"));
        for record in reader.records() {
            let record = record.map_err(|e| invalid(path, e.to_string()))?;
            let field = |c: Option<usize>| c.and_then(|c| record.get(c)).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
            if let Some(t) = field(text) {
                out.push((t, field(intent), field(response)));
            }
        }
        return Ok(out);
    }
    for line in BufReader::new(file).lines() {
        let line = line.map_err(MlError::io(path))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&line).map_err(|e| invalid(path, e.to_string()))?;
        let text_field = |k: &str| value.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        let intent = text_field("intent");
        if value.get("messages").is_some() {
            if let Some((text, reply)) = conversation(&value) {
                out.push((text, intent, reply));
            }
        } else if let Some(text) = text_field("text") {
            out.push((text, intent, text_field("response")));
        }
    }
    Ok(out)
}

/// A message as splits and evaluation compare it: words, lower case.
pub fn message_key(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

impl ChatSet {
    pub fn load(path: &Path, split: SplitSpec, seed: u64) -> Result<Self> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let file = File::open(path).map_err(MlError::io(path))?;
        let outcome = validate_file(Family::Chat, &name, file, &Limits::default());
        if !outcome.is_valid() {
            return Err(invalid(path, outcome.errors.summary(PROBLEMS_SHOWN)));
        }
        let rows = rows(path)?;
        let untagged = rows.iter().filter(|r| r.1.is_none()).count();
        if untagged > 0 {
            return Err(invalid(
                path,
                format!(
                    "{untagged} of {} conversations have no \"intent\"; the chat family learns to route messages to intents, so give every \
                     conversation one (its category)",
                    rows.len()
                ),
            ));
        }
        let intents: Vec<String> = rows.iter().filter_map(|r| r.1.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        if intents.len() < 2 {
            return Err(invalid(
                path,
                format!(
                    "every conversation has the intent {:?}; a router needs at least two intents to choose between (add conversations of \
                     other intents)",
                    intents.first().map_or("", String::as_str)
                ),
            ));
        }
        let index: BTreeMap<&str, usize> = intents.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
        let examples: Vec<Example> = rows
            .iter()
            .filter_map(|(text, intent, reply)| {
                Some(Example { text: text.clone(), intent: *index.get(intent.as_deref()?)?, reply: reply.clone() })
            })
            .collect();
        let (train, val, test) = split_by_message(&examples, intents.len(), split, seed);
        Ok(Self { intents, examples, train, val, test, file: name, sha256: sha256_file(path)? })
    }

    /// Each distinct (text, intent) of a split once: the classifier's
    /// examples (a message with five approved replies is one example).
    pub fn distinct(&self, split: &[usize]) -> Vec<usize> {
        let mut seen = BTreeSet::new();
        split.iter().copied().filter(|&i| seen.insert((message_key(&self.examples[i].text), self.examples[i].intent))).collect()
    }

    /// Every approved reply by intent, each once, in file order.
    pub fn replies(&self) -> Vec<(usize, String)> {
        let mut seen = BTreeSet::new();
        self.examples
            .iter()
            .filter_map(|e| Some((e.intent, e.reply.clone()?)))
            .filter(|(intent, reply)| seen.insert((*intent, reply.clone())))
            .collect()
    }
}

/// Train, validation and test example indices; all copies of a message in
/// one split, messages stratified by their (most common) intent.
fn split_by_message(examples: &[Example], intents: usize, spec: SplitSpec, seed: u64) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let mut by_message: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, e) in examples.iter().enumerate() {
        by_message.entry(message_key(&e.text)).or_default().push(i);
    }
    let mut groups: Vec<Vec<(u64, &String)>> = vec![vec![]; intents];
    for (key, members) in &by_message {
        let mut votes = vec![0usize; intents];
        for &i in members {
            votes[examples[i].intent] += 1;
        }
        let intent = (0..intents).max_by_key(|&k| (votes[k], std::cmp::Reverse(k))).unwrap_or(0);
        groups[intent].push((rank(seed, key), key));
    }
    let (mut train, mut val, mut test) = (vec![], vec![], vec![]);
    for mut group in groups {
        group.sort_unstable();
        let (n_train, n_val) = spec.sizes(group.len());
        for (j, (_, key)) in group.into_iter().enumerate() {
            let target = if j < n_train {
                &mut train
            } else if j < n_train + n_val {
                &mut val
            } else {
                &mut test
            };
            target.extend(by_message.get(key).into_iter().flatten().copied());
        }
    }
    for s in [&mut train, &mut val, &mut test] {
        s.sort_unstable();
    }
    (train, val, test)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, body: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        (dir, path)
    }

    #[test]
    fn copies_of_a_message_stay_in_one_split_and_every_split_has_messages() {
        let mut body = String::from("text,intent,response\n");
        for i in 0..60 {
            let intent = if i % 2 == 0 { "billing" } else { "shipping" };
            body.push_str(&format!("question number {i},{intent},answer a{i}\nQuestion  number {i},{intent},answer b{i}\n"));
        }
        let (_dir, path) = write("d.csv", &body);
        let set = ChatSet::load(&path, SplitSpec { train: 80, val: 10, test: 10 }, 7).unwrap();
        assert_eq!(set.intents, ["billing", "shipping"]);
        assert_eq!(set.examples.len(), 120);
        let split_of = |i: usize| [&set.train, &set.val, &set.test].iter().position(|s| s.contains(&i)).unwrap();
        for i in (0..120).step_by(2) {
            assert_eq!(split_of(i), split_of(i + 1), "both copies of {:?}", set.examples[i].text);
        }
        assert_eq!((set.train.len(), set.val.len(), set.test.len()), (96, 12, 12));
        assert_eq!(set.distinct(&set.train).len(), 48);
        assert_eq!(set.replies().len(), 120);
    }

    #[test]
    fn one_intent_and_untagged_conversations_are_refused_with_what_to_do() {
        let (_d, one) = write("one.csv", "text,intent\nhello,greeting\nhi there,greeting\n");
        let e = ChatSet::load(&one, SplitSpec::default(), 1).unwrap_err().to_string();
        assert!(e.contains("at least two intents") && e.contains("\"greeting\""), "{e}");
        let (_d, untagged) = write(
            "u.jsonl",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"hello\"}]}\n",
        );
        let e = ChatSet::load(&untagged, SplitSpec::default(), 1).unwrap_err().to_string();
        assert!(e.contains("no \"intent\""), "{e}");
    }

    #[test]
    fn a_conversation_is_read_as_its_last_user_turns_and_last_reply() {
        let v: Value = serde_json::from_str(
            r#"{"messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "one"}, {"role": "assistant", "content": "a"},
               {"role": "user", "content": "two"}, {"role": "user", "content": "three"}, {"role": "user", "content": "four"},
               {"role": "assistant", "content": "final"}]}"#,
        )
        .unwrap();
        assert_eq!(conversation(&v), Some(("two\nthree\nfour".into(), Some("final".into()))));
    }
}
