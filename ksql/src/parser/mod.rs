//! The front parser for ksqlDB's dialect, in the style of DataFusion's `DFParser`:
//! the script is tokenized once by sqlparser (so every error knows its line and
//! column), split on `;`, and each statement's leading words pick the statement kind.
//! ksql-only clauses (WINDOW, WITHIN, EMIT, PARTITION BY) are cut out of the token
//! stream and the rest of a SELECT goes to sqlparser's `parse_query`.
//!
//! Unquoted identifiers are upper-cased here, as ksqlDB does; quoted ones keep their
//! case.

pub mod ast;
mod clauses;
mod create;
mod cursor;
mod insert;
mod statement;
pub mod types;

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::error::{Error, Result};
use ast::ParsedStatement;
use cursor::Cursor;

/// Parses a script of `;`-separated statements.
pub fn parse(sql: &str) -> Result<Vec<ParsedStatement>> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| Error::syntax_from(&e.to_string()))?;
    let tokens: Vec<TokenWithSpan> = tokens
        .into_iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .map(upper_case_identifier)
        .collect();
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..=tokens.len() {
        let end_of_statement = i == tokens.len() || tokens[i].token == Token::SemiColon;
        if !end_of_statement {
            continue;
        }
        let part = &tokens[start..i];
        start = i + 1;
        if part.is_empty() || part.iter().all(|t| t.token == Token::EOF) {
            continue;
        }
        let text = slice_text(sql, part);
        let statement = Cursor::new(part.to_vec()).statement()?;
        out.push(ParsedStatement { statement, text });
    }
    Ok(out)
}

/// Parses exactly one statement.
pub fn parse_one(sql: &str) -> Result<ParsedStatement> {
    let mut all = parse(sql)?;
    match all.len() {
        1 => Ok(all.remove(0)),
        0 => Err(Error::Syntax {
            line: 1,
            column: 1,
            message: "empty statement".into(),
        }),
        n => Err(Error::Syntax {
            line: 1,
            column: 1,
            message: format!("expected one statement, found {n}"),
        }),
    }
}

fn upper_case_identifier(mut t: TokenWithSpan) -> TokenWithSpan {
    if let Token::Word(w) = &mut t.token {
        if w.quote_style.is_none() {
            w.value = w.value.to_ascii_uppercase();
        }
    }
    t
}

/// The source text a run of tokens came from (without the trailing `;`).
fn slice_text(sql: &str, part: &[TokenWithSpan]) -> String {
    let first = part.iter().find(|t| t.token != Token::EOF);
    let last = part.iter().rev().find(|t| t.token != Token::EOF);
    let (Some(first), Some(last)) = (first, last) else {
        return String::new();
    };
    let offset = |line: u64, column: u64| -> usize {
        let mut pos = 0;
        for (n, l) in sql.split_inclusive('\n').enumerate() {
            if n as u64 + 1 == line {
                return pos
                    + l.char_indices()
                        .nth(column.saturating_sub(1) as usize)
                        .map(|(i, _)| i)
                        .unwrap_or(l.len());
            }
            pos += l.len();
        }
        sql.len()
    };
    let a = offset(first.span.start.line, first.span.start.column);
    let b = offset(last.span.end.line, last.span.end.column);
    sql.get(a..b.max(a)).unwrap_or("").trim().to_string()
}

#[cfg(test)]
mod tests;
