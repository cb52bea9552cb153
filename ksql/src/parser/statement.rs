//! The statement dispatcher: a statement's leading words pick its grammar; the short
//! statements (DROP, ALTER, TERMINATE, SHOW/LIST, DESCRIBE, PRINT, SET, UNSET, ASSERT,
//! RUN SCRIPT, EXPLAIN) are read here, CREATE and INSERT in their own files, and a
//! SELECT with ksqlDB's clauses by [`query`].

use datafusion::sql::sqlparser::ast::{Expr, Query};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::ast::*;
use super::clauses;
use super::cursor::{expect_parser_end, sub_parser, Cursor};
use crate::error::{Error, Result};

impl Cursor {
    pub fn statement(mut self) -> Result<Statement> {
        let Some(first) = self.peek().cloned() else {
            return Err(Error::eof("empty statement"));
        };
        if self.peek_is("SELECT") {
            return Ok(Statement::Select(query(self.rest())?));
        }
        if self.eat_word("CREATE") {
            return self.create();
        }
        if self.eat_word("INSERT") {
            return self.insert();
        }
        if self.eat_word("DROP") {
            let kind = self.source_kind()?;
            let if_exists = self.eat_word("IF") && {
                self.expect_word("EXISTS")?;
                true
            };
            let name = self.identifier()?;
            let delete_topic = self.eat_word("DELETE") && {
                self.expect_word("TOPIC")?;
                true
            };
            self.expect_end()?;
            return Ok(Statement::Drop {
                kind,
                if_exists,
                name,
                delete_topic,
            });
        }
        if self.eat_word("ALTER") {
            let kind = self.source_kind()?;
            let name = self.identifier()?;
            let mut columns = Vec::new();
            loop {
                self.expect_word("ADD")?;
                self.eat_word("COLUMN");
                let column = self.identifier()?;
                columns.push((column, self.sql_type()?));
                if !self.eat(&Token::Comma) {
                    break;
                }
            }
            self.expect_end()?;
            return Ok(Statement::Alter {
                kind,
                name,
                columns,
            });
        }
        if self.eat_word("TERMINATE") {
            let query_id = if self.eat_word("ALL") {
                None
            } else {
                Some(self.identifier()?)
            };
            self.expect_end()?;
            return Ok(Statement::Terminate { query_id });
        }
        if self.eat_word("SHOW") || self.eat_word("LIST") {
            let what = match self.identifier()?.as_str() {
                "STREAMS" => ShowWhat::Streams,
                "TABLES" => ShowWhat::Tables,
                "TOPICS" => ShowWhat::Topics,
                "QUERIES" => ShowWhat::Queries,
                "PROPERTIES" => ShowWhat::Properties,
                "FUNCTIONS" => return Ok(Statement::ShowFunctions),
                _ => {
                    self.pos -= 1;
                    return Err(self
                        .unexpected("STREAMS, TABLES, TOPICS, QUERIES, PROPERTIES or FUNCTIONS"));
                }
            };
            self.eat_word("EXTENDED");
            self.expect_end()?;
            return Ok(Statement::Show(what));
        }
        if self.eat_word("DESCRIBE") {
            if self.eat_word("FUNCTIONS") {
                return Ok(Statement::ShowFunctions);
            }
            let mut extended = self.eat_word("EXTENDED");
            let name = self.identifier()?;
            extended |= self.eat_word("EXTENDED");
            self.expect_end()?;
            return Ok(Statement::Describe { name, extended });
        }
        if self.eat_word("PRINT") {
            let topic = self.topic_name()?;
            let from_beginning = self.eat_word("FROM") && {
                self.expect_word("BEGINNING")?;
                true
            };
            let limit = if self.eat_word("LIMIT") {
                Some(self.number()?.max(0) as u64)
            } else {
                None
            };
            self.expect_end()?;
            return Ok(Statement::Print {
                topic,
                from_beginning,
                limit,
            });
        }
        if self.eat_word("SET") {
            let name = self.string()?;
            self.expect(&Token::Eq)?;
            let value = self.string()?;
            self.expect_end()?;
            return Ok(Statement::Set { name, value });
        }
        if self.eat_word("UNSET") {
            let name = self.string()?;
            self.expect_end()?;
            return Ok(Statement::Unset { name });
        }
        if self.eat_word("ASSERT") {
            return self.assert();
        }
        if self.eat_word("RUN") {
            self.expect_word("SCRIPT")?;
            let path = self.string()?;
            self.expect_end()?;
            return Ok(Statement::RunScript { path });
        }
        if self.eat_word("EXPLAIN") {
            if self.tokens.len() == self.pos + 1 {
                return Ok(Statement::ExplainQueryId(self.identifier()?));
            }
            let inner = Cursor::new(self.rest()).statement()?;
            return Ok(Statement::Explain(Box::new(inner)));
        }
        Err(Error::at(
            &first,
            "expected a statement (CREATE, SELECT, INSERT, ALTER, DROP, TERMINATE, SHOW, LIST, DESCRIBE, PRINT, SET, UNSET, ASSERT, RUN SCRIPT, EXPLAIN)",
        ))
    }

    /// `ASSERT [NOT EXISTS] TOPIC name [WITH (...)] [TIMEOUT n unit]` (ksqlDB 0.27+);
    /// `ASSERT SCHEMA` parses but needs a Schema Registry.
    pub(super) fn assert(&mut self) -> Result<Statement> {
        let exists = !(self.eat_word("NOT") && {
            self.expect_word("EXISTS")?;
            true
        });
        if self.eat_word("SCHEMA") {
            return Ok(Statement::AssertSchema);
        }
        if !self.eat_word("TOPIC") {
            return Err(self.unexpected("TOPIC or SCHEMA"));
        }
        let topic = self.topic_name()?;
        let props = if self.eat_word("WITH") {
            self.props()?
        } else {
            Props::new()
        };
        let timeout_ms = if self.eat_word("TIMEOUT") {
            Some(self.duration()?)
        } else {
            None
        };
        self.expect_end()?;
        Ok(Statement::AssertTopic {
            topic,
            exists,
            props,
            timeout_ms,
        })
    }
}

/// A SELECT with ksqlDB's clauses.
pub fn query(tokens: Vec<TokenWithSpan>) -> Result<KsqlQuery> {
    let text = tokens
        .iter()
        .map(|t| t.token.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let cut = clauses::cut(tokens)?;
    let mut p = sub_parser(cut.rest);
    let query: Box<Query> = p
        .parse_query()
        .map_err(|e| Error::syntax_from(&e.to_string()))?;
    expect_parser_end(&mut p)?;
    let partition_by: Option<Expr> = match cut.partition_by {
        None => None,
        Some(tokens) => {
            let mut p = sub_parser(tokens);
            let e = p
                .parse_expr()
                .map_err(|e| Error::syntax_from(&e.to_string()))?;
            expect_parser_end(&mut p)?;
            Some(e)
        }
    };
    Ok(KsqlQuery {
        query,
        window: cut.window,
        within: cut.within,
        partition_by,
        emit: cut.emit,
        text,
    })
}
