//! `CREATE [OR REPLACE] STREAM|TABLE [IF NOT EXISTS] name (columns) WITH (...)` and
//! `CREATE ... AS SELECT`: column definitions (KEY, PRIMARY KEY, HEADERS, HEADER('k'))
//! and ksqlDB's SQL types.

use datafusion::sql::sqlparser::tokenizer::Token;

use super::ast::*;
use super::cursor::Cursor;
use super::statement::query;
use super::types::SqlType;
use crate::error::{Error, Result};

impl Cursor {
    pub(super) fn create(&mut self) -> Result<Statement> {
        let or_replace = self.eat_word("OR") && {
            self.expect_word("REPLACE")?;
            true
        };
        let read_only = self.eat_word("SOURCE");
        let kind = self.source_kind()?;
        let if_not_exists = self.eat_word("IF") && {
            self.expect_word("NOT")?;
            self.expect_word("EXISTS")?;
            true
        };
        let name = self.identifier()?;
        let mut columns = Vec::new();
        if self.eat(&Token::LParen) {
            loop {
                columns.push(self.column_def(kind)?);
                if self.eat(&Token::RParen) {
                    break;
                }
                self.expect(&Token::Comma)?;
            }
        }
        let props = if self.eat_word("WITH") {
            self.props()?
        } else {
            Props::new()
        };
        if self.eat_word("AS") {
            if !columns.is_empty() {
                return Err(self.unexpected("no column list with AS SELECT"));
            }
            let query = query(self.rest())?;
            return Ok(Statement::CreateAsSelect {
                kind,
                or_replace,
                if_not_exists,
                name,
                props,
                query,
            });
        }
        self.expect_end()?;
        Ok(Statement::CreateSource {
            read_only,
            kind,
            or_replace,
            if_not_exists,
            name,
            columns,
            props,
        })
    }

    pub(super) fn column_def(&mut self, kind: SourceKind) -> Result<ColumnDef> {
        let name_at = self.pos;
        let name = self.identifier()?;
        let sql_type = self.sql_type()?;
        // ksqlDB's AstBuilder reports the wrong kind of key at the column's name.
        let wrong_key = |this: &Self, message: &str| {
            let start = &this.tokens[name_at].span.start;
            Error::semantic(format!(
                "Line: {}, Col: {}: Column `{name}` is a {message}",
                start.line, start.column
            ))
        };
        let key = if self.eat_word("PRIMARY") {
            self.expect_word("KEY")?;
            if kind == SourceKind::Stream {
                return Err(wrong_key(
                    self,
                    "'PRIMARY KEY' column: please use 'KEY' for streams.",
                ));
            }
            true
        } else if self.eat_word("KEY") {
            if kind == SourceKind::Table {
                return Err(wrong_key(
                    self,
                    "'KEY' column: please use 'PRIMARY KEY' for tables.",
                ));
            }
            true
        } else {
            false
        };
        let header = if key {
            None
        } else if self.eat_word("HEADERS") {
            Some(HeaderRef::All)
        } else if self.eat_word("HEADER") {
            self.expect(&Token::LParen)?;
            let key = self.string()?;
            self.expect(&Token::RParen)?;
            Some(HeaderRef::Key(key))
        } else {
            None
        };
        Ok(ColumnDef {
            name,
            sql_type,
            key,
            header,
        })
    }

    pub(super) fn sql_type(&mut self) -> Result<SqlType> {
        let at = self.pos;
        let name = self.identifier()?;
        if let Some(t) = SqlType::simple(&name) {
            // ksqlDB's grammar takes `VARCHAR(STRING)` for STRING; any other
            // parameter after a simple type is an error at the parameter, as there.
            if self.eat(&Token::LParen) {
                let param = self.pos;
                if name == "VARCHAR" && self.identifier().ok().as_deref() == Some("STRING") {
                    self.expect(&Token::RParen)?;
                    return Ok(t);
                }
                return Err(Error::at(
                    &self.tokens[param.min(self.tokens.len() - 1)],
                    &format!("{name} takes no parameters"),
                ));
            }
            return Ok(t);
        }
        match name.as_str() {
            "DECIMAL" => {
                self.expect(&Token::LParen)?;
                let p = self.number()?;
                self.expect(&Token::Comma)?;
                let s = self.number()?;
                self.expect(&Token::RParen)?;
                if !(1..=38).contains(&p) || s < 0 || s > p {
                    return Err(Error::at(&self.tokens[at], "DECIMAL(precision, scale) needs 1 <= precision <= 38 and 0 <= scale <= precision"));
                }
                Ok(SqlType::Decimal(p as u8, s as i8))
            }
            "ARRAY" => {
                self.expect(&Token::Lt)?;
                let t = self.sql_type()?;
                self.expect_gt()?;
                Ok(SqlType::Array(Box::new(t)))
            }
            "MAP" => {
                self.expect(&Token::Lt)?;
                let k = self.sql_type()?;
                self.expect(&Token::Comma)?;
                let v = self.sql_type()?;
                self.expect_gt()?;
                Ok(SqlType::Map(Box::new(k), Box::new(v)))
            }
            "STRUCT" => {
                self.expect(&Token::Lt)?;
                let mut fields = Vec::new();
                loop {
                    let n = self.identifier()?;
                    fields.push((n, self.sql_type()?));
                    if !self.eat(&Token::Comma) {
                        break;
                    }
                }
                self.expect_gt()?;
                Ok(SqlType::Struct(fields))
            }
            _ => Err(Error::at(&self.tokens[at], &format!("unknown type {name}"))),
        }
    }
}
