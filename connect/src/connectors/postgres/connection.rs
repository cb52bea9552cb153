//! Connecting to PostgreSQL: `connection.url` as `postgres://user:pass@host:port/db` or
//! JDBC's `jdbc:postgresql://host:port/db?user=..&password=..`; `connection.user` and
//! `connection.password` override what the URL says.

use std::str::FromStr;

use tokio_postgres::{Client, Config as PgConfig, NoTls};

use crate::api::config_def::{key, ConfigDef, ConfigKey, Type, Validator, Values};
use crate::api::Config;
use crate::error::{Error, Result};

/// The typed connection settings.
#[derive(Debug, Clone)]
pub struct Connection {
    pub config: PgConfig,
    /// The URL without its password, for messages.
    pub display: String,
}

/// The JDBC connectors' connection keys (Confluent's "Database" group).
pub fn connection_keys() -> [ConfigKey; 4] {
    [
        key(
            "connection.url",
            Type::String,
            "JDBC connection URL (jdbc:postgresql://host:port/db) or a postgres:// URL.",
        )
        .required()
        .validator(Validator::NonEmpty)
        .high(),
        key("connection.user", Type::String, "JDBC connection user.").high(),
        key(
            "connection.password",
            Type::Password,
            "JDBC connection password.",
        )
        .high(),
        key(
            "dialect.name",
            Type::String,
            "The database dialect; only PostgreSqlDatabaseDialect is supported.",
        )
        .default("")
        .low(),
    ]
}

impl Connection {
    pub fn parse(config: &Config) -> Result<Connection> {
        let values = ConfigDef::new()
            .group("Database", connection_keys())
            .parse(config)?;
        Connection::from_values(&values)
    }

    /// The connection from a config parsed with [`connection_keys`] among its keys.
    pub fn from_values(values: &Values) -> Result<Connection> {
        let url = values
            .string("connection.url")
            .unwrap_or_default()
            .to_string();
        let bad = |why: String| {
            Error::config(
                "connection.url",
                format!("{url} is not a PostgreSQL URL: {why}"),
            )
        };
        let mut pg = if let Some(rest) = url.strip_prefix("jdbc:postgresql://") {
            // jdbc:postgresql://host[:port]/db?k=v&k=v
            let (hostpart, query) = rest.split_once('?').unwrap_or((rest, ""));
            let (authority, db) = hostpart.split_once('/').unwrap_or((hostpart, ""));
            let mut c = PgConfig::new();
            for hp in authority.split(',') {
                let (host, port) = match hp.rsplit_once(':') {
                    Some((h, p)) => (
                        h,
                        p.parse::<u16>()
                            .map_err(|e| bad(format!("port {p}: {e}")))?,
                    ),
                    None => (hp, 5432),
                };
                c.host(host).port(port);
            }
            if !db.is_empty() {
                c.dbname(db);
            }
            for kv in query.split('&').filter(|kv| !kv.is_empty()) {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                match k {
                    "user" => {
                        c.user(v);
                    }
                    "password" => {
                        c.password(v);
                    }
                    "connectTimeout" => {
                        if let Ok(s) = v.parse() {
                            c.connect_timeout(std::time::Duration::from_secs(s));
                        }
                    }
                    _ => {}
                }
            }
            c
        } else {
            PgConfig::from_str(&url).map_err(|e| bad(e.to_string()))?
        };
        if let Some(u) = values.non_empty("connection.user") {
            pg.user(u);
        }
        if let Some(p) = values
            .string("connection.password")
            .filter(|p| !p.is_empty())
        {
            pg.password(p);
        }
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(std::time::Duration::from_secs(10));
        }
        let display = url
            .split('?')
            .next()
            .map(|u| match u.split_once('@') {
                Some((scheme_user, host)) if u.starts_with("postgres") => {
                    let scheme = scheme_user.split("//").next().unwrap_or("postgres:");
                    format!("{scheme}//{host}")
                }
                _ => u.to_string(),
            })
            .unwrap_or_default();
        Ok(Connection {
            config: pg,
            display,
        })
    }

    /// Opens a connection; its driver runs on the tokio runtime.
    pub async fn connect(&self) -> Result<Client> {
        let (client, conn) = self.config.connect(NoTls).await.map_err(|e| {
            Error::Retriable(format!("connecting to {}: {}", self.display, describe(&e)))
        })?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "PostgreSQL connection ended");
            }
        });
        Ok(client)
    }
}

/// Opens a connection whose session reads and compares timestamps in UTC (the sources
/// turn them into epoch milliseconds).
pub async fn connect_utc(connection: &Connection) -> Result<Client> {
    let client = connection.connect().await?;
    client
        .batch_execute("SET TIME ZONE 'UTC'")
        .await
        .map_err(|e| Error::Retriable(describe(&e)))?;
    Ok(client)
}

/// A PostgreSQL error with its SQL state and detail, when the server sent them.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} (SQL state {})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(": ");
                s.push_str(d);
            }
            s
        }
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        }
    }
}

/// Lost connections, refused connects, a server shutting down or starting, and
/// serialization failures are worth retrying; other SQL errors are not.
pub fn is_transient(e: &tokio_postgres::Error) -> bool {
    let Some(db) = e.as_db_error() else {
        return true;
    };
    let code = db.code().code();
    e.is_closed()
        || code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources
        || matches!(code, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn both_url_forms_parse() {
        let c = Connection::parse(&cfg(&[(
            "connection.url",
            "jdbc:postgresql://db1:6543/shop?user=app&password=s3cret",
        )]))
        .unwrap();
        assert_eq!(c.config.get_ports(), &[6543]);
        assert_eq!(c.config.get_dbname(), Some("shop"));
        assert_eq!(c.config.get_user(), Some("app"));
        assert!(!c.display.contains("s3cret"));
        let c = Connection::parse(&cfg(&[
            ("connection.url", "postgres://u:pw@127.0.0.1:5433/db"),
            ("connection.user", "other"),
        ]))
        .unwrap();
        assert_eq!(c.config.get_user(), Some("other"));
        assert_eq!(c.display, "postgres://127.0.0.1:5433/db");
        let e = Connection::parse(&cfg(&[(
            "connection.url",
            "jdbc:postgresql://h:notaport/db",
        )]))
        .unwrap_err();
        assert!(e.to_string().contains("connection.url"), "{e}");
        assert!(Connection::parse(&cfg(&[])).is_err());
    }
}
