//! The aggregates ksqlDB has and DataFusion lacks (LATEST_BY_OFFSET,
//! EARLIEST_BY_OFFSET, TOPK).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

pub fn register(ctx: &SessionContext) {
    if let Ok(agg) = ctx.udaf("array_agg") {
        ctx.register_udaf(agg.as_ref().clone().with_aliases(["collect_list"]));
    }
    ctx.register_udaf(AggregateUDF::from(ByOffset::new(true)));
    ctx.register_udaf(AggregateUDF::from(ByOffset::new(false)));
    ctx.register_udaf(AggregateUDF::from(TopK::new()));
}

/// LATEST_BY_OFFSET / EARLIEST_BY_OFFSET: the last / first non-NULL value in input
/// order.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ByOffset {
    latest: bool,
    signature: Signature,
}

impl ByOffset {
    fn new(latest: bool) -> ByOffset {
        ByOffset {
            latest,
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for ByOffset {
    fn name(&self) -> &str {
        if self.latest {
            "latest_by_offset"
        } else {
            "earliest_by_offset"
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(ByOffsetAcc {
            latest: self.latest,
            value: ScalarValue::try_from(args.return_field.data_type())?,
        }))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[value]", args.name),
            args.return_field.data_type().clone(),
            true,
        ))])
    }
}

#[derive(Debug)]
struct ByOffsetAcc {
    latest: bool,
    value: ScalarValue,
}

impl Accumulator for ByOffsetAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let a = &values[0];
        for i in 0..a.len() {
            if a.is_null(i) {
                continue;
            }
            if self.latest || self.value.is_null() {
                self.value = ScalarValue::try_from_array(a, i)?;
            }
        }
        Ok(())
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.value.clone()])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.value.clone())
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.value.size()
    }
}

/// TOPK(col, k): the k largest values, largest first.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TopK {
    signature: Signature,
}

impl TopK {
    fn new() -> TopK {
        TopK {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

fn list_of(t: &DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", t.clone(), true)))
}

impl AggregateUDFImpl for TopK {
    fn name(&self) -> &str {
        "topk"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(list_of(&arg_types[0]))
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let k = args
            .exprs
            .get(1)
            .and_then(|e| {
                e.downcast_ref::<datafusion::physical_expr::expressions::Literal>()
                    .and_then(|l| match l.value() {
                        ScalarValue::Int64(Some(k)) => Some(*k as usize),
                        ScalarValue::Int32(Some(k)) => Some(*k as usize),
                        _ => None,
                    })
            })
            .ok_or_else(|| {
                datafusion::error::DataFusionError::Plan(
                    "TOPK's second argument must be a whole number literal".into(),
                )
            })?;
        let item = match args.return_field.data_type() {
            DataType::List(f) => f.data_type().clone(),
            other => other.clone(),
        };
        Ok(Box::new(TopKAcc {
            k,
            item,
            values: Vec::new(),
        }))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[values]", args.name),
            args.return_field.data_type().clone(),
            true,
        ))])
    }
}

#[derive(Debug)]
struct TopKAcc {
    k: usize,
    item: DataType,
    values: Vec<ScalarValue>,
}

impl TopKAcc {
    fn add(&mut self, v: ScalarValue) {
        if v.is_null() {
            return;
        }
        self.values.push(v);
        self.values
            .sort_by(|a, b| b.partial_cmp(a).unwrap_or(std::cmp::Ordering::Equal));
        self.values.truncate(self.k);
    }
}

impl Accumulator for TopKAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let a = &values[0];
        for i in 0..a.len() {
            self.add(ScalarValue::try_from_array(a, i)?);
        }
        Ok(())
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let a = &states[0];
        for i in 0..a.len() {
            if let ScalarValue::List(l) = ScalarValue::try_from_array(a, i)? {
                if !l.is_null(0) {
                    let inner = l.value(0);
                    for j in 0..inner.len() {
                        self.add(ScalarValue::try_from_array(&inner, j)?);
                    }
                }
            }
        }
        Ok(())
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::List(ScalarValue::new_list_nullable(
            &self.values,
            &self.item,
        )))
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.iter().map(|v| v.size()).sum::<usize>()
    }
}
