//! Cuts ksqlDB's own clauses out of a SELECT's tokens so sqlparser can read the rest:
//! `WINDOW TUMBLING|HOPPING|SESSION (...)`, `WITHIN ... [GRACE PERIOD ...]`,
//! `PARTITION BY expr` and `EMIT CHANGES|FINAL`.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::ast::{Emit, WindowKind, WindowSpec, Within};
use super::cursor::{is_word, Cursor};
use crate::error::{Error, Result};

pub struct Cut {
    pub rest: Vec<TokenWithSpan>,
    pub window: Option<WindowSpec>,
    pub within: Vec<Option<Within>>,
    pub partition_by: Option<Vec<TokenWithSpan>>,
    pub emit: Option<Emit>,
}

pub fn cut(tokens: Vec<TokenWithSpan>) -> Result<Cut> {
    let mut out = Cut {
        rest: Vec::new(),
        window: None,
        within: Vec::new(),
        partition_by: None,
        emit: None,
    };
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        match &t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth == 0 && is_word(&t.token, "JOIN") {
            out.within.push(None);
        }
        let next_is = |w: &str| tokens.get(i + 1).is_some_and(|n| is_word(&n.token, w));
        if depth == 0 && is_word(&t.token, "WINDOW") {
            let kind = match tokens.get(i + 1).map(|t| &t.token) {
                Some(k) if is_word(k, "TUMBLING") => Some(WindowKind::Tumbling),
                Some(k) if is_word(k, "HOPPING") => Some(WindowKind::Hopping),
                Some(k) if is_word(k, "SESSION") => Some(WindowKind::Session),
                _ => None,
            };
            if let Some(kind) = kind {
                let end = matching_paren(&tokens, i + 2)?;
                let inner = tokens[i + 3..end].to_vec();
                out.window = Some(window(kind, inner, &tokens[i + 1])?);
                i = end + 1;
                continue;
            }
        }
        if depth == 0 && is_word(&t.token, "WITHIN") {
            let end = tokens[i + 1..]
                .iter()
                .position(|t| is_word(&t.token, "ON"))
                .map(|p| p + i + 1)
                .ok_or_else(|| Error::at(t, "expected ON after the WITHIN clause"))?;
            let w = within(tokens[i + 1..end].to_vec())?;
            match out.within.last_mut() {
                Some(slot) => *slot = Some(w),
                None => return Err(Error::at(t, "WITHIN is only valid on a JOIN")),
            }
            i = end;
            continue;
        }
        if depth == 0 && is_word(&t.token, "GROUP") && next_is("BY") {
            check_group_by(&tokens[i + 2..])?;
        }
        if depth == 0 && is_word(&t.token, "PARTITION") && next_is("BY") {
            let start = i + 2;
            let mut end = start;
            let mut d = 0usize;
            while end < tokens.len() {
                match &tokens[end].token {
                    Token::LParen => d += 1,
                    Token::RParen => d = d.saturating_sub(1),
                    tok if d == 0
                        && ["EMIT", "LIMIT", "HAVING"].iter().any(|w| is_word(tok, w)) =>
                    {
                        break
                    }
                    Token::EOF => break,
                    _ => {}
                }
                end += 1;
            }
            out.partition_by = Some(tokens[start..end].to_vec());
            i = end;
            continue;
        }
        if depth == 0 && is_word(&t.token, "EMIT") {
            out.emit = Some(if next_is("CHANGES") {
                Emit::Changes
            } else if next_is("FINAL") {
                Emit::Final
            } else {
                let found = tokens.get(i + 1).unwrap_or(t);
                return Err(Error::at(found, "expected CHANGES or FINAL after EMIT"));
            });
            i += 2;
            continue;
        }
        out.rest.push(t.clone());
        i += 1;
    }
    Ok(out)
}

fn matching_paren(tokens: &[TokenWithSpan], open: usize) -> Result<usize> {
    match tokens.get(open) {
        Some(t) if t.token == Token::LParen => {}
        Some(t) => return Err(Error::at(t, "expected '(' after the window type")),
        None => return Err(Error::eof("expected '(' after the window type")),
    }
    let mut depth = 0;
    for (j, t) in tokens.iter().enumerate().skip(open) {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    return Ok(j);
                }
            }
            _ => {}
        }
    }
    Err(Error::eof("unbalanced parentheses in WINDOW clause"))
}

fn window(kind: WindowKind, inner: Vec<TokenWithSpan>, at: &TokenWithSpan) -> Result<WindowSpec> {
    let mut c = Cursor::new(inner);
    let mut spec = WindowSpec {
        kind,
        size_ms: 0,
        advance_ms: 0,
        grace_ms: None,
    };
    if kind == WindowKind::Session {
        spec.size_ms = c.duration()?;
    } else {
        c.expect_word("SIZE")?;
        spec.size_ms = c.duration()?;
        spec.advance_ms = spec.size_ms;
    }
    let mut advance_given = false;
    while c.eat(&Token::Comma) {
        if c.eat_word("ADVANCE") {
            c.expect_word("BY")?;
            spec.advance_ms = c.duration()?;
            advance_given = true;
        } else if c.eat_word("GRACE") {
            c.expect_word("PERIOD")?;
            spec.grace_ms = Some(c.duration()?);
        } else if c.eat_word("RETENTION") {
            c.duration()?;
        } else {
            return Err(c.unexpected("ADVANCE BY, GRACE PERIOD or RETENTION"));
        }
    }
    c.expect_end()?;
    if kind == WindowKind::Hopping && !advance_given {
        return Err(Error::at(at, "HOPPING windows need ADVANCE BY"));
    }
    if spec.size_ms <= 0 || spec.advance_ms < 0 || spec.advance_ms > spec.size_ms {
        return Err(Error::at(
            at,
            "window size must be positive and ADVANCE BY at most the size",
        ));
    }
    Ok(spec)
}

/// ksqlDB's grammar reads GROUP BY as value expressions, a list or one parenthesised
/// list, not predicates: `GROUP BY a AND b` and `GROUP BY a, (b, c)` are syntax
/// errors at the token where its parser stops.
fn check_group_by(tokens: &[TokenWithSpan]) -> Result<()> {
    const ENDS: [&str; 6] = ["HAVING", "PARTITION", "EMIT", "LIMIT", "ORDER", "WINDOW"];
    const PREDICATES: [&str; 7] = ["AND", "OR", "NOT", "IS", "LIKE", "BETWEEN", "IN"];
    let end = {
        let mut depth = 0usize;
        tokens
            .iter()
            .position(|t| {
                match &t.token {
                    Token::LParen => depth += 1,
                    Token::RParen => depth = depth.saturating_sub(1),
                    _ => {}
                }
                depth == 0
                    && (matches!(t.token, Token::EOF | Token::SemiColon)
                        || ENDS.iter().any(|w| is_word(&t.token, w)))
            })
            .unwrap_or(tokens.len())
    };
    let clause = &tokens[..end];
    let several = {
        let mut depth = 0usize;
        clause.iter().any(|t| {
            match &t.token {
                Token::LParen => depth += 1,
                Token::RParen => depth = depth.saturating_sub(1),
                Token::Comma if depth == 0 => return true,
                _ => {}
            }
            false
        })
    };
    // Depth counts parentheses and CASE ... END, inside which predicates belong.
    let mut depth = 0usize;
    let mut element_start = true;
    let mut in_tuple = false;
    for t in clause {
        let starts_element = std::mem::replace(&mut element_start, false);
        match &t.token {
            Token::LParen => {
                in_tuple |= depth == 0 && starts_element && several;
                depth += 1;
            }
            Token::RParen => {
                depth = depth.saturating_sub(1);
                in_tuple &= depth > 0;
            }
            Token::Comma if depth == 1 && in_tuple => {
                return Err(Error::at(t, "expected ')'"));
            }
            Token::Comma if depth == 0 => element_start = true,
            tok if is_word(tok, "CASE") => depth += 1,
            tok if is_word(tok, "END") => depth = depth.saturating_sub(1),
            Token::Eq | Token::Neq | Token::Lt | Token::Gt | Token::LtEq | Token::GtEq
                if depth == 0 =>
            {
                return Err(Error::at(
                    t,
                    "GROUP BY takes value expressions, not predicates",
                ));
            }
            tok if depth == 0 && PREDICATES.iter().any(|w| is_word(tok, w)) => {
                return Err(Error::at(
                    t,
                    "GROUP BY takes value expressions, not predicates",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn within(tokens: Vec<TokenWithSpan>) -> Result<Within> {
    let mut c = Cursor::new(tokens);
    let (before, after) = if c.eat(&Token::LParen) {
        let b = c.duration()?;
        c.expect(&Token::Comma)?;
        let a = c.duration()?;
        c.expect(&Token::RParen)?;
        (b, a)
    } else {
        let d = c.duration()?;
        (d, d)
    };
    let grace = if c.eat_word("GRACE") {
        c.expect_word("PERIOD")?;
        Some(c.duration()?)
    } else {
        None
    };
    c.expect_end()?;
    Ok(Within {
        before_ms: before,
        after_ms: after,
        grace_ms: grace,
    })
}
