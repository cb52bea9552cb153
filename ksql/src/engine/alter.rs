//! `ALTER STREAM|TABLE name ADD [COLUMN] c type, ...` (ksqlDB 0.14+): appends value
//! columns to a source declared with CREATE ... WITH. Queries already running keep
//! the schema they started with, as in ksqlDB.

use super::ddl::validate;
use super::{status, Engine, Inner, Origin};
use crate::catalog::Column;
use crate::entity::Entity;
use crate::error::{Error, Result};
use crate::parser::ast::{ParsedStatement, Statement};

impl Engine {
    pub(crate) async fn alter_source(
        &self,
        inner: &mut Inner,
        s: &ParsedStatement,
        origin: &Origin,
    ) -> Result<Entity> {
        let Statement::Alter {
            kind,
            name,
            columns,
        } = &s.statement
        else {
            return Err(Error::Engine("not an ALTER".into()));
        };
        let Some(source) = inner.catalog.sources.get(name) else {
            return Err(Error::semantic(format!("Source {name} does not exist.")));
        };
        if source.kind != *kind {
            return Err(Error::semantic(format!(
                "Incompatible data source type is {}, but statement was ALTER {kind}",
                source.kind
            )));
        }
        let lower = kind.to_string().to_lowercase();
        if source.read_only {
            return Err(Error::semantic(format!(
                "Cannot alter {lower} '{name}': ALTER operations are not supported on source {lower}s."
            )));
        }
        let created_by_query = inner.catalog.queries.values().any(|q| {
            &q.sink == name
                && q.sql
                    .trim_start()
                    .to_ascii_uppercase()
                    .starts_with("CREATE")
        });
        if created_by_query {
            return Err(Error::semantic(
                "ALTER command is not supported for CREATE ... AS statements.",
            ));
        }
        let mut altered = source.clone();
        for (column, sql_type) in columns {
            if altered.column(column).is_some() {
                return Err(Error::semantic(format!(
                    "Cannot add column `{column}` to schema. A column with the same name already exists."
                )));
            }
            altered
                .columns
                .push(Column::new(column.clone(), sql_type.clone(), false));
        }
        validate(&altered)?;
        inner.catalog.sources.insert(name.clone(), altered);
        if !origin.replay {
            self.record(inner, s, None, &Default::default()).await?;
        }
        let what = if lower == "stream" { "Stream" } else { "Table" };
        Ok(status(&s.text, &format!("{what} altered."), None))
    }
}
