//! ksqlDB's functions on DataFusion's library: aliases where DataFusion has the same
//! function under another name, and what it lacks written here — one file per family
//! (aggregates, strings, arrays and maps, JSON, bytes, geography), most of them
//! per-row functions built with [`row::udf`].

pub mod aggregates;
pub mod arrays;
pub mod datetime;
pub mod json;
pub mod maps;
pub mod row;
pub mod strings;
pub mod text;

#[cfg(test)]
mod tests;

use datafusion::common::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::prelude::SessionContext;

/// The aggregate functions by their ksqlDB names (what makes a SELECT an
/// aggregation).
pub const AGGREGATES: &[&str] = &[
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "COUNT_DISTINCT",
    "LATEST_BY_OFFSET",
    "EARLIEST_BY_OFFSET",
    "COLLECT_LIST",
    "COLLECT_SET",
    "TOPK",
    "TOPKDISTINCT",
    "ARRAY_AGG",
    "ATTR",
    "SUM_LIST",
    "STDDEV_SAMP",
    "STDDEV_SAMPLE",
    "HISTOGRAM",
    "CORRELATION",
];

/// Aggregates that cannot undo a value, so a table (whose rows are replaced) cannot
/// feed them (ksqlDB's non-`TableUdaf`s).
pub const STREAM_ONLY_AGGREGATES: &[&str] = &[
    "LATEST_BY_OFFSET",
    "EARLIEST_BY_OFFSET",
    "MIN",
    "MAX",
    "TOPK",
    "TOPKDISTINCT",
];

/// ksqlDB name -> DataFusion name.
const SCALAR_ALIASES: &[(&str, &str)] = &[
    ("ucase", "upper"),
    ("lcase", "lower"),
    ("len", "character_length"),
    ("ifnull", "nvl"),
    ("array_length", "cardinality"),
    ("unix_timestamp", "now"),
];

pub fn register(ctx: &SessionContext) -> Result<()> {
    for (alias, target) in SCALAR_ALIASES {
        if let Ok(udf) = ctx.udf(target) {
            let aliased = udf.as_ref().clone().with_aliases([*alias]);
            ctx.register_udf(aliased);
        }
    }
    for f in strings::all()
        .into_iter()
        .chain(arrays::all())
        .chain(maps::all())
        .chain(json::all())
        .chain(text::all())
        .chain(datetime::all())
    {
        ctx.register_udf(f);
    }
    // AS_VALUE(key column) copies a key column into the value: to the expression it
    // is the column itself; the planner sees the call and does not make it a key.
    ctx.register_udf(row::udf(
        "as_value",
        &[1],
        |t| Ok(t[0].clone()),
        |a, _| Ok(a[0].clone()),
    ));
    aggregates::register(ctx);
    if let Ok(agg) = ctx.udaf("stddev") {
        ctx.register_udaf(agg.as_ref().clone().with_aliases(["stddev_sample"]));
    }
    Ok(())
}
