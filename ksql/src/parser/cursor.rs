//! A cursor over one statement's tokens: the statement dispatcher and the small
//! grammar of ksqlDB's own statements. Expressions and queries are handed to
//! sqlparser's `Parser` over the same tokens, so its errors keep their positions.

use datafusion::sql::sqlparser::ast::{Expr, Query};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::ast::*;
use super::clauses;
use super::types::SqlType;
use crate::error::{Error, Result};

pub fn is_word(t: &Token, w: &str) -> bool {
    matches!(t, Token::Word(word) if word.quote_style.is_none() && word.value.eq_ignore_ascii_case(w))
}

pub struct Cursor {
    tokens: Vec<TokenWithSpan>,
    pos: usize,
}

impl Cursor {
    pub fn new(mut tokens: Vec<TokenWithSpan>) -> Cursor {
        tokens.retain(|t| t.token != Token::EOF);
        Cursor { tokens, pos: 0 }
    }

    fn peek(&self) -> Option<&TokenWithSpan> {
        self.tokens.get(self.pos)
    }

    fn peek_is(&self, w: &str) -> bool {
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

    fn string(&mut self) -> Result<String> {
        match self.peek().map(|t| t.token.clone()) {
            Some(Token::SingleQuotedString(s)) => {
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.unexpected("a quoted string")),
        }
    }

    fn number(&mut self) -> Result<i64> {
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

    fn rest(&mut self) -> Vec<TokenWithSpan> {
        let rest = self.tokens[self.pos..].to_vec();
        self.pos = self.tokens.len();
        rest
    }

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
    fn assert(&mut self) -> Result<Statement> {
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

    /// A topic name, quoted or not; names are case-sensitive, so read as typed.
    fn topic_name(&mut self) -> Result<String> {
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

    fn source_kind(&mut self) -> Result<SourceKind> {
        if self.eat_word("STREAM") {
            Ok(SourceKind::Stream)
        } else if self.eat_word("TABLE") {
            Ok(SourceKind::Table)
        } else {
            Err(self.unexpected("STREAM or TABLE"))
        }
    }

    fn create(&mut self) -> Result<Statement> {
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

    fn column_def(&mut self, kind: SourceKind) -> Result<ColumnDef> {
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

    fn sql_type(&mut self) -> Result<SqlType> {
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

    /// `>`, splitting the `>>` of nested generics.
    fn expect_gt(&mut self) -> Result<()> {
        if self.eat(&Token::Gt) {
            return Ok(());
        }
        if self.peek().is_some_and(|t| t.token == Token::ShiftRight) {
            self.tokens[self.pos].token = Token::Gt;
            return Ok(());
        }
        Err(self.unexpected("'>'"))
    }

    fn props(&mut self) -> Result<Props> {
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

    fn insert(&mut self) -> Result<Statement> {
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

/// The name as the user typed it (before upper-casing), for case-sensitive topics.
fn original_word(t: &TokenWithSpan) -> String {
    match &t.token {
        Token::Word(w) => w.value.clone(),
        other => other.to_string(),
    }
}

fn sub_parser(tokens: Vec<TokenWithSpan>) -> Parser<'static> {
    static DIALECT: GenericDialect = GenericDialect {};
    Parser::new(&DIALECT).with_tokens_with_locations(tokens)
}

fn expect_parser_end(p: &mut Parser<'_>) -> Result<()> {
    let t = p.peek_token();
    if t.token == Token::EOF {
        Ok(())
    } else {
        Err(Error::at(&t, "expected the end of the statement"))
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
