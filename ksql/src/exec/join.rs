//! Joins: stream-stream (WITHIN), stream-table and table-table.

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::parser::ast::KsqlQuery;
use crate::planner::QueryPlan;

pub async fn plan(_q: &KsqlQuery, _catalog: &Catalog) -> Result<QueryPlan> {
    Err(Error::semantic("joins are not supported yet"))
}
