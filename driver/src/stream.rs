//! Text as tokens are generated: each new token's text once it is whole, and the stop
//! strings that end a generation.
//!
//! A token may hold part of a character (byte-level tokenizers split multi-byte UTF-8
//! characters across tokens; the decoder then renders the part as U+FFFD) or its text may
//! depend on the tokens before it (SentencePiece's leading space). So, as text-generation-
//! inference does, the stream decodes a short window of tokens, from the start of the last
//! piece it gave out: the window's text less that of its first part is the new text,
//! handed out only once it does not end in U+FFFD. Text that could be the start of a stop
//! string is held back until the next token shows whether it is.

/// Decodes token ids to text (a tokenizer's `decode` without its special tokens).
pub type Decode<'a> = Box<dyn Fn(&[u32]) -> Result<String, String> + 'a>;

/// The text of a growing sequence of tokens.
pub struct TextStream<'a> {
    decode: Decode<'a>,
    ids: Vec<u32>,
    /// The window's start: the first token of the last piece given out.
    prefix: usize,
    /// The tokens before this one are in `text`.
    read: usize,
    /// The text decoded so far.
    text: String,
    /// Bytes of `text` given out.
    emitted: usize,
    stops: Vec<String>,
    stopped: bool,
}

/// What a new token adds.
#[derive(Debug, PartialEq)]
pub struct Piece {
    /// Text now final, to print.
    pub text: String,
    /// A stop string appeared: `text` ends before it, and the generation ends here.
    pub stop: bool,
}

impl<'a> TextStream<'a> {
    /// A stream that stops at any of `stops` (empty strings are ignored).
    pub fn new(decode: Decode<'a>, stops: &[String]) -> TextStream<'a> {
        TextStream {
            decode,
            ids: Vec::new(),
            prefix: 0,
            read: 0,
            text: String::new(),
            emitted: 0,
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            stopped: false,
        }
    }

    /// A stream of a tokenizer's text, without its special tokens.
    pub fn of_tokenizer(t: &'a tokenizers::Tokenizer, stops: &[String]) -> TextStream<'a> {
        let decode = move |ids: &[u32]| {
            t.decode(ids, true)
                .map_err(|e| format!("cannot decode tokens {ids:?}: {e}"))
        };
        TextStream::new(Box::new(decode), stops)
    }

    /// Adds the next generated token.
    pub fn push(&mut self, id: u32) -> Result<Piece, String> {
        if self.stopped {
            return Ok(Piece {
                text: String::new(),
                stop: true,
            });
        }
        self.ids.push(id);
        let before = (self.decode)(&self.ids[self.prefix..self.read])?;
        let now = (self.decode)(&self.ids[self.prefix..])?;
        if now.len() > before.len() && !now.ends_with('\u{FFFD}') {
            if let Some(new) = now.get(before.len()..) {
                self.text.push_str(new);
                self.prefix = self.read;
                self.read = self.ids.len();
            }
        }
        Ok(self.release(false))
    }

    /// The rest, once generation ends: text held back as the possible start of a stop
    /// string, and the tokens of a character left unfinished (as the decoder renders them).
    pub fn finish(&mut self) -> Result<Piece, String> {
        if !self.stopped && self.read < self.ids.len() {
            let before = (self.decode)(&self.ids[self.prefix..self.read])?;
            let now = (self.decode)(&self.ids[self.prefix..])?;
            if let Some(new) = now.get(before.len()..) {
                self.text.push_str(new);
            }
            self.read = self.ids.len();
        }
        Ok(self.release(true))
    }

    /// The text given out so far (all of it after [`TextStream::finish`]).
    pub fn text(&self) -> &str {
        &self.text[..self.emitted]
    }

    /// Gives out the text no stop string can claim; at a stop string, the text before it.
    fn release(&mut self, last: bool) -> Piece {
        if self.stopped {
            return Piece {
                text: String::new(),
                stop: true,
            };
        }
        let found = self
            .stops
            .iter()
            .filter_map(|s| self.text.find(s.as_str()))
            .min();
        if let Some(at) = found {
            // (At or past `emitted`: the start of a stop string is always held back.)
            let at = at.max(self.emitted);
            let text = self.text[self.emitted..at].to_string();
            self.text.truncate(at);
            self.emitted = at;
            self.stopped = true;
            return Piece { text, stop: true };
        }
        let hold = if last { 0 } else { self.held_back() };
        let end = (self.text.len() - hold).max(self.emitted);
        let text = self.text[self.emitted..end].to_string();
        self.emitted = end;
        Piece { text, stop: false }
    }

    /// The length of the longest end of `text` that begins a stop string.
    fn held_back(&self) -> usize {
        let longest = self.stops.iter().map(String::len).max().unwrap_or(0);
        let len = self.text.len();
        (len.saturating_sub(longest)..len)
            .filter(|&i| self.text.is_char_boundary(i))
            .find(|&i| {
                let end = &self.text[i..];
                self.stops.iter().any(|s| s.starts_with(end))
            })
            .map_or(0, |i| len - i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A byte-level "tokenizer": token i is byte i; text is the bytes as UTF-8, an
    /// unfinished character rendered as U+FFFD (as byte-level BPE decoders do).
    fn bytes() -> Decode<'static> {
        Box::new(|ids: &[u32]| {
            let b: Vec<u8> = ids.iter().map(|&i| i as u8).collect();
            Ok(String::from_utf8_lossy(&b).into_owned())
        })
    }

    fn feed(s: &mut TextStream, text: &str) -> (Vec<String>, bool) {
        let mut pieces = Vec::new();
        for &b in text.as_bytes() {
            let p = s.push(b as u32).unwrap();
            pieces.push(p.text);
            if p.stop {
                return (pieces, true);
            }
        }
        (pieces, false)
    }

    #[test]
    fn a_character_split_across_tokens_comes_out_whole() {
        // "é" is two bytes, "€" three, "🦀" four: nothing comes out until the last byte.
        let mut s = TextStream::new(bytes(), &[]);
        let (pieces, stop) = feed(&mut s, "aé€🦀b");
        assert!(!stop);
        assert_eq!(pieces, ["a", "", "é", "", "", "€", "", "", "", "🦀", "b"]);
        assert_eq!(s.finish().unwrap().text, "");
        assert_eq!(s.text(), "aé€🦀b");
        // An unfinished character at the end comes out as the decoder renders it.
        let mut s = TextStream::new(bytes(), &[]);
        feed(&mut s, "x");
        s.push(0xE2).unwrap();
        assert_eq!(s.finish().unwrap().text, "\u{FFFD}");
        assert_eq!(s.text(), "x\u{FFFD}");
    }

    #[test]
    fn text_that_depends_on_the_token_before_is_joined_right() {
        // SentencePiece-like: "_" is a space, dropped at the start of a decode.
        let decode: Decode = Box::new(|ids: &[u32]| {
            let words = ["_Hello", "_world", "!"];
            let s: String = ids.iter().map(|&i| words[i as usize]).collect();
            Ok(s.replace('_', " ").trim_start().to_string())
        });
        let mut s = TextStream::new(decode, &[]);
        let pieces: Vec<String> = [0, 1, 2].iter().map(|&i| s.push(i).unwrap().text).collect();
        assert_eq!(pieces, ["Hello", " world", "!"]);
    }

    #[test]
    fn a_stop_string_ends_the_text_before_it() {
        let stop = vec!["END".to_string(), "\n\n".to_string()];
        let mut s = TextStream::new(bytes(), &stop);
        let (pieces, stopped) = feed(&mut s, "ab ENx EN");
        assert!(!stopped);
        // "EN" is held back until the next byte shows it is not "END".
        assert_eq!(pieces, ["a", "b", " ", "", "", "ENx", " ", "", ""]);
        let (pieces, stopped) = feed(&mut s, "D and more");
        assert!(stopped);
        assert_eq!(pieces, [""]);
        assert_eq!(s.text(), "ab ENx ");
        assert_eq!(
            s.finish().unwrap(),
            Piece {
                text: String::new(),
                stop: true
            }
        );
        // Held-back text that no stop string completes comes out at the end.
        let mut s = TextStream::new(bytes(), &stop);
        feed(&mut s, "one\n");
        assert_eq!(s.text(), "one");
        assert_eq!(s.finish().unwrap().text, "\n");
        assert_eq!(s.text(), "one\n");
        // A stop string inside one token's text: the text before it comes out.
        let words: Decode = Box::new(|ids: &[u32]| {
            Ok(ids
                .iter()
                .map(|&i| ["alpha ", "beta\n\ngamma"][i as usize])
                .collect())
        });
        let mut s = TextStream::new(words, &stop);
        assert_eq!(s.push(0).unwrap().text, "alpha ");
        assert_eq!(
            s.push(1).unwrap(),
            Piece {
                text: "beta".into(),
                stop: true
            }
        );
        assert_eq!(s.text(), "alpha beta");
    }
}
