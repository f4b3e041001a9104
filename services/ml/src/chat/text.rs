//! Text to token ids, with the model's own `tokenizer.json` and nothing
//! else (no hub, no download), and how much of a text the vocabulary can read.
//!
//! The shipped all-MiniLM-L6-v2 tokenizer pads and truncates every text to
//! 128 tokens; we turn its padding off and pad each batch to its longest
//! text instead (customer messages are short: ~15 tokens), and truncate from
//! the left so the latest words of a conversation are the ones kept.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};
use unicode_script::{Script, UnicodeScript};

use crate::{MlError, Result};

/// The model's tokenizer, set up for Tenfold's batches.
pub struct TextEncoder {
    tokenizer: Tokenizer,
    unk: Option<u32>,
    /// [CLS], [SEP], [PAD]…: never the text's own pieces.
    specials: Vec<u32>,
    pad: u32,
    max_len: usize,
}

/// A padded batch: ids, token types and attention mask, each (batch, tokens).
pub struct Batch {
    pub ids: Tensor,
    pub type_ids: Tensor,
    pub mask: Tensor,
    /// Real (not padding) tokens in the batch.
    pub tokens: usize,
}

impl TextEncoder {
    /// Reads `tokenizer.json`; `max_len` counts the special tokens.
    pub fn load(path: &Path, max_len: usize) -> Result<Self> {
        let bad = |reason: String| MlError::InvalidModel { path: path.into(), reason };
        if !path.is_file() {
            return Err(bad(
                "tokenizer.json is missing; export the model's tokenizer (tokenizer.save_pretrained) next to its weights".into()
            ));
        }
        let mut tokenizer =
            Tokenizer::from_file(path).map_err(|e| bad(format!("tokenizer.json is not a Hugging Face tokenizer file ({e})")))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Left,
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| bad(format!("the tokenizer refuses a maximum length of {max_len} tokens ({e})")))?;
        let pad = tokenizer.token_to_id("[PAD]").unwrap_or(0);
        let unk = tokenizer.token_to_id("[UNK]");
        let specials =
            ["[CLS]", "[SEP]", "[PAD]", "[MASK]", "<s>", "</s>", "<pad>"].iter().filter_map(|t| tokenizer.token_to_id(t)).collect();
        Ok(Self { tokenizer, unk, specials, pad, max_len })
    }

    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    fn encode(&self, texts: &[&str]) -> Result<Vec<tokenizers::Encoding>> {
        self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| MlError::arg("text", format!("the text cannot be tokenized ({e})")))
    }

    /// Tokens in each text as written: no special tokens, no truncation
    /// (what a reply costs its reader, for metering).
    pub fn count_tokens(&self, texts: &[&str]) -> Result<Vec<usize>> {
        let mut whole = self.tokenizer.clone();
        whole.with_truncation(None).map_err(|e| MlError::Incompatible(format!("the tokenizer cannot stop truncating ({e})")))?;
        let encoded =
            whole.encode_batch(texts.to_vec(), false).map_err(|e| MlError::arg("text", format!("the text cannot be tokenized ({e})")))?;
        Ok(encoded.iter().map(tokenizers::Encoding::len).collect())
    }

    /// Token ids of each text, special tokens included.
    pub fn ids(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        Ok(self.encode(texts)?.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// The ids of each text and how much of it the vocabulary reads.
    pub fn read(&self, texts: &[&str]) -> Result<Vec<(Vec<u32>, Reading)>> {
        Ok(self
            .encode(texts)?
            .into_iter()
            .map(|e| {
                let (unknown, pieces) = self.unknown_pieces(e.get_ids());
                // Pieces per word: a word the vocabulary knows is one known piece.
                #[derive(Default)]
                struct Word {
                    pieces: usize,
                    letters: bool,
                    unknown: bool,
                }
                let mut per_word: BTreeMap<u32, Word> = BTreeMap::new();
                for ((word, token), id) in e.get_word_ids().iter().zip(e.get_tokens()).zip(e.get_ids()) {
                    if let Some(word) = word {
                        let entry = per_word.entry(*word).or_default();
                        entry.pieces += 1;
                        entry.unknown |= Some(*id) == self.unk;
                        entry.letters |= entry.unknown || token.chars().any(char::is_alphabetic);
                    }
                }
                let words: Vec<&Word> = per_word.values().filter(|w| w.letters).collect();
                let whole_words = words.iter().filter(|w| w.pieces == 1 && !w.unknown).count();
                let reading = Reading { pieces, unknown, words: words.len(), whole_words };
                (e.get_ids().to_vec(), reading)
            })
            .collect())
    }

    /// Pads sequences of ids to the longest into one batch.
    pub fn batch(&self, seqs: &[&[u32]], device: &Device) -> Result<Batch> {
        let len = seqs.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(seqs.len() * len);
        let mut mask = Vec::with_capacity(seqs.len() * len);
        for s in seqs {
            ids.extend_from_slice(s);
            ids.extend(std::iter::repeat_n(self.pad, len - s.len()));
            mask.extend(std::iter::repeat_n(1u32, s.len()));
            mask.extend(std::iter::repeat_n(0u32, len - s.len()));
        }
        let shape = (seqs.len(), len);
        let ids = Tensor::from_vec(ids, shape, device)?;
        Ok(Batch {
            type_ids: ids.zeros_like()?,
            mask: Tensor::from_vec(mask, shape, device)?.to_dtype(DType::F32)?,
            ids,
            tokens: seqs.iter().map(|s| s.len()).sum(),
        })
    }

    /// Unreadable word pieces and all word pieces of one text's ids.
    ///
    /// Unreadable: `[UNK]`, and a lone non-ASCII letter — what a vocabulary
    /// falls back to for a script it has no words of (an English BERT spells
    /// Georgian or Armenian letter by letter: known ids, never learnt as
    /// language). Chinese characters are read one at a time by every BERT
    /// tokenizer, so for them only `[UNK]` counts.
    pub fn unknown_pieces(&self, ids: &[u32]) -> (usize, usize) {
        let mut unknown = 0;
        let mut pieces = 0;
        for &id in ids {
            let Some(piece) = self.tokenizer.id_to_token(id) else { continue };
            if self.specials.contains(&id) {
                continue;
            }
            pieces += 1;
            let letters = piece.strip_prefix("##").unwrap_or(&piece);
            let mut chars = letters.chars();
            let lone_letter = match (chars.next(), chars.next()) {
                (Some(c), None) => c.is_alphabetic() && !c.is_ascii() && !character_script(c),
                _ => false,
            };
            if Some(id) == self.unk || lone_letter {
                unknown += 1;
            }
        }
        (unknown, pieces)
    }

    /// How well the vocabulary covers `texts`, overall and per script.
    pub fn coverage(&self, texts: &[&str]) -> Result<Coverage> {
        let ids = self.ids(texts)?;
        let mut per_script: BTreeMap<String, ScriptCoverage> = BTreeMap::new();
        let (mut unknown, mut pieces) = (0, 0);
        for (text, ids) in texts.iter().zip(&ids) {
            let (u, n) = self.unknown_pieces(ids);
            unknown += u;
            pieces += n;
            let entry = per_script.entry(main_script(text)).or_default();
            entry.texts += 1;
            entry.unknown += u;
            entry.pieces += n;
        }
        for s in per_script.values_mut() {
            s.unknown_share = s.unknown as f64 / s.pieces.max(1) as f64;
        }
        Ok(Coverage { texts: texts.len(), unknown_share: unknown as f64 / pieces.max(1) as f64, per_script })
    }
}

/// Chinese characters, which every BERT tokenizer splits one piece each
/// (`tokenize_chinese_chars`), so a lone one is normal.
fn character_script(c: char) -> bool {
    c.script() == Script::Han
}

/// The writing system most of a text's letters are in ("Latin", "Cyrillic",
/// "Han"…): a proxy for its language that needs no language model.
pub fn main_script(text: &str) -> String {
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for c in text.chars().filter(|c| c.is_alphabetic()) {
        let script: Script = c.script();
        *counts.entry(script.full_name()).or_default() += 1;
    }
    counts.into_iter().max_by_key(|(_, n)| *n).map_or_else(|| "none".to_owned(), |(s, _)| s.to_owned())
}

/// How much of one text the vocabulary reads.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reading {
    pub pieces: usize,
    /// `[UNK]` pieces and letters spelled one at a time.
    pub unknown: usize,
    /// Words with a letter, and those that are one vocabulary piece.
    pub words: usize,
    pub whole_words: usize,
}

impl Reading {
    /// Not a text the model can judge: mostly unknown pieces, or (two words
    /// or more) mostly words the vocabulary has never seen whole — another
    /// language, or gibberish.
    pub fn unreadable(&self) -> bool {
        self.unknown as f64 > UNKNOWN_REFUSE * self.pieces.max(1) as f64 || (self.words >= 2 && self.whole_words * 2 < self.words)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ScriptCoverage {
    pub texts: usize,
    pub pieces: usize,
    pub unknown: usize,
    pub unknown_share: f64,
}

/// Tokenizer coverage of a dataset, kept in the report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Coverage {
    pub texts: usize,
    pub unknown_share: f64,
    pub per_script: BTreeMap<String, ScriptCoverage>,
}

/// Above this share of `[UNK]` pieces a model cannot learn from the text.
pub const UNKNOWN_REFUSE: f64 = 0.25;
/// Above this, a script is named in the report's warnings.
pub const UNKNOWN_WARN: f64 = 0.05;

impl Coverage {
    /// Scripts the vocabulary reads badly, worst first, as report warnings.
    pub fn warnings(&self) -> Vec<String> {
        let mut bad: Vec<(&String, &ScriptCoverage)> =
            self.per_script.iter().filter(|(_, s)| s.unknown_share > UNKNOWN_WARN && s.pieces > 0).collect();
        bad.sort_by(|a, b| b.1.unknown_share.total_cmp(&a.1.unknown_share));
        bad.into_iter()
            .map(|(script, s)| {
                format!(
                    "{:.0}% of the word pieces of the {} {script}-script texts are unreadable to the base model's tokenizer: \
                     the model cannot learn from them; use a base model whose vocabulary covers {script} (a multilingual encoder)",
                    s.unknown_share * 100.0,
                    s.texts
                )
            })
            .collect()
    }

    /// Refuses data the tokenizer mostly cannot read.
    pub fn check(&self, path: &Path) -> Result<()> {
        if self.unknown_share <= UNKNOWN_REFUSE {
            return Ok(());
        }
        let worst = self.warnings().into_iter().next().unwrap_or_default();
        Err(MlError::InvalidDataset {
            path: path.into(),
            family: "chat",
            summary: format!(
                "{:.0}% of the training text's word pieces are unreadable to the base model's tokenizer ([UNK] or spelled letter by letter) (the limit is {:.0}%); {worst}",
                self.unknown_share * 100.0,
                UNKNOWN_REFUSE * 100.0
            ),
        })
    }
}
