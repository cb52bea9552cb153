//! `INSERT INTO target [(columns)] VALUES (...)` and `INSERT INTO target SELECT ...`.

use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::ast::*;
use super::cursor::{expect_parser_end, sub_parser, Cursor};
use super::statement::query;
use crate::error::{Error, Result};

impl Cursor {
    pub(super) fn insert(&mut self) -> Result<Statement> {
        self.expect_word("INTO")?;
        let target = self.identifier()?;
        let mut columns = Vec::new();
        if self.eat(&Token::LParen) {
            loop {
                columns.push(self.identifier()?);
                if self.eat(&Token::RParen) {
                    break;
                }
                self.expect(&Token::Comma)?;
            }
        }
        if self.eat_word("VALUES") {
            self.expect(&Token::LParen)?;
            let end = self.tokens.len();
            if self.tokens.last().map(|t| &t.token) != Some(&Token::RParen) {
                return Err(self.unexpected("')' closing VALUES"));
            }
            let inner = self.tokens[self.pos..end - 1].to_vec();
            self.pos = end;
            let mut p = sub_parser(inner);
            let values = p
                .parse_comma_separated(Parser::parse_expr)
                .map_err(|e| Error::syntax_from(&e.to_string()))?;
            expect_parser_end(&mut p)?;
            if !columns.is_empty() && columns.len() != values.len() {
                return Err(Error::Semantic(format!(
                    "INSERT INTO {target}: {} columns but {} values",
                    columns.len(),
                    values.len()
                )));
            }
            return Ok(Statement::InsertValues {
                target,
                columns,
                values,
            });
        }
        if !columns.is_empty() {
            return Err(self.unexpected("VALUES"));
        }
        if !self.peek_is("SELECT") {
            return Err(self.unexpected("SELECT or VALUES"));
        }
        Ok(Statement::InsertSelect {
            target,
            query: query(self.rest())?,
        })
    }
}
