//! A cursor over one statement's tokens and the grammar's small pieces (names,
//! strings, durations, types' `>`, `WITH (...)` properties). The statements are read
//! by `statement.rs` (the dispatcher and the short statements), `create.rs` and
//! `insert.rs`; expressions and queries are handed to sqlparser's `Parser` over the
//! same tokens (`sub_parser`), so its errors keep their positions.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::ast::*;
use crate::error::{Error, Result};

pub fn is_word(t: &Token, w: &str) -> bool {
    matches!(t, Token::Word(word) if word.quote_style.is_none() && word.value.eq_ignore_ascii_case(w))
}

pub struct Cursor {
    pub(super) tokens: Vec<TokenWithSpan>,
    pub(super) pos: usize,
}

impl Cursor {
    pub fn new(mut tokens: Vec<TokenWithSpan>) -> Cursor {
        tokens.retain(|t| t.token != Token::EOF);
        Cursor { tokens, pos: 0 }
    }

    pub(super) fn peek(&self) -> Option<&TokenWithSpan> {
        self.tokens.get(self.pos)
    }

    pub(super) fn peek_is(&self, w: &str) -> bool {
        self.peek().is_some_and(|t| is_word(&t.token, w))
    }

    pub fn eat(&mut self, t: &Token) -> bool {
        if self.peek().is_some_and(|x| &x.token == t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn eat_word(&mut self, w: &str) -> bool {
        if self.peek_is(w) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn unexpected(&self, expected: &str) -> Error {
        match self.peek() {
            Some(t) => Error::at(t, &format!("expected {expected}")),
            None => Error::eof(&format!("expected {expected}")),
        }
    }

    pub fn expect_word(&mut self, w: &str) -> Result<()> {
        if self.eat_word(w) {
            Ok(())
        } else {
            Err(self.unexpected(w))
        }
    }

    pub fn expect(&mut self, t: &Token) -> Result<()> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{t}'")))
        }
    }

    pub fn expect_end(&self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(t) => Err(Error::at(t, "expected the end of the statement")),
        }
    }

    /// An identifier: unquoted ones were upper-cased by the tokenizer pass.
    pub fn identifier(&mut self) -> Result<String> {
        match self.peek().map(|t| t.token.clone()) {
            Some(Token::Word(w)) => {
                self.pos += 1;
                Ok(w.value)
            }
            _ => Err(self.unexpected("an identifier")),
        }
    }

    pub(super) fn string(&mut self) -> Result<String> {
        match self.peek().map(|t| t.token.clone()) {
            Some(Token::SingleQuotedString(s)) => {
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.unexpected("a quoted string")),
        }
    }

    pub(super) fn number(&mut self) -> Result<i64> {
        match self.peek().map(|t| t.token.clone()) {
            Some(Token::Number(n, _)) => {
                let at = self.pos;
                self.pos += 1;
                n.parse()
                    .map_err(|_| Error::at(&self.tokens[at], "expected a whole number"))
            }
            _ => Err(self.unexpected("a number")),
        }
    }

    /// `n UNIT`, in milliseconds.
    pub fn duration(&mut self) -> Result<i64> {
        let n = self.number()?;
        let at = self.pos;
        let unit = self.identifier()?;
        let ms: i64 = match unit.trim_end_matches('S') {
            "MILLISECOND" => 1,
            "SECOND" => 1_000,
            "MINUTE" => 60_000,
            "HOUR" => 3_600_000,
            "DAY" => 86_400_000,
            _ => {
                return Err(Error::at(
                    &self.tokens[at],
                    "expected a time unit (MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS)",
                ))
            }
        };
        Ok(n * ms)
    }

    pub(super) fn rest(&mut self) -> Vec<TokenWithSpan> {
        let rest = self.tokens[self.pos..].to_vec();
        self.pos = self.tokens.len();
        rest
    }

    /// A topic name, quoted or not; names are case-sensitive, so read as typed.
    pub(super) fn topic_name(&mut self) -> Result<String> {
        match self.peek().map(|t| t.token.clone()) {
            Some(Token::SingleQuotedString(s)) => {
                self.pos += 1;
                Ok(s)
            }
            Some(Token::Word(_)) => {
                let t = &self.tokens[self.pos];
                self.pos += 1;
                Ok(original_word(t))
            }
            _ => Err(self.unexpected("a topic name")),
        }
    }

    pub(super) fn source_kind(&mut self) -> Result<SourceKind> {
        if self.eat_word("STREAM") {
            Ok(SourceKind::Stream)
        } else if self.eat_word("TABLE") {
            Ok(SourceKind::Table)
        } else {
            Err(self.unexpected("STREAM or TABLE"))
        }
    }

    /// `>`, splitting the `>>` of nested generics.
    pub(super) fn expect_gt(&mut self) -> Result<()> {
        if self.eat(&Token::Gt) {
            return Ok(());
        }
        if self.peek().is_some_and(|t| t.token == Token::ShiftRight) {
            self.tokens[self.pos].token = Token::Gt;
            return Ok(());
        }
        Err(self.unexpected("'>'"))
    }

    pub(super) fn props(&mut self) -> Result<Props> {
        self.expect(&Token::LParen)?;
        let mut props = Props::new();
        loop {
            let name = self.identifier()?.to_ascii_uppercase();
            self.expect(&Token::Eq)?;
            let value = match self.peek().map(|t| t.token.clone()) {
                Some(Token::SingleQuotedString(s)) => PropValue::Str(s),
                Some(Token::Number(n, _)) => PropValue::Num(n),
                Some(t) if is_word(&t, "TRUE") => PropValue::Bool(true),
                Some(t) if is_word(&t, "FALSE") => PropValue::Bool(false),
                _ => return Err(self.unexpected("a property value")),
            };
            self.pos += 1;
            props.insert(name, value);
            if self.eat(&Token::RParen) {
                break;
            }
            self.expect(&Token::Comma)?;
        }
        Ok(props)
    }
}

/// The name as the user typed it (before upper-casing), for case-sensitive topics.
pub(super) fn original_word(t: &TokenWithSpan) -> String {
    match &t.token {
        Token::Word(w) => w.value.clone(),
        other => other.to_string(),
    }
}

pub(super) fn sub_parser(tokens: Vec<TokenWithSpan>) -> Parser<'static> {
    static DIALECT: GenericDialect = GenericDialect {};
    Parser::new(&DIALECT).with_tokens_with_locations(tokens)
}

pub(super) fn expect_parser_end(p: &mut Parser<'_>) -> Result<()> {
    let t = p.peek_token();
    if t.token == Token::EOF {
        Ok(())
    } else {
        Err(Error::at(&t, "expected the end of the statement"))
    }
}
