//! The aggregates ksqlDB has and DataFusion lacks (LATEST_BY_OFFSET,
//! EARLIEST_BY_OFFSET, TOPK).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::prelude::SessionContext;

pub fn register(ctx: &SessionContext) {
    if let Ok(agg) = ctx.udaf("array_agg") {
        ctx.register_udaf(agg.as_ref().clone().with_aliases(["collect_list"]));
    }
    ctx.register_udaf(AggregateUDF::from(ByOffset::new(true)));
    ctx.register_udaf(AggregateUDF::from(ByOffset::new(false)));
    ctx.register_udaf(AggregateUDF::from(TopK::new(false)));
    ctx.register_udaf(AggregateUDF::from(TopK::new(true)));
    ctx.register_udaf(AggregateUDF::from(CollectSet::new(false)));
    ctx.register_udaf(AggregateUDF::from(CollectSet::new(true)));
    ctx.register_udaf(AggregateUDF::from(SumList::new()));
}

/// LATEST_BY_OFFSET / EARLIEST_BY_OFFSET(col [, n] [, ignoreNulls]): the last / first
/// value in input order — NULLs skipped unless `ignoreNulls` is false — or, with `n`,
/// an array of the last / first n such values in input order.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ByOffset {
    latest: bool,
    signature: Signature,
}

impl ByOffset {
    fn new(latest: bool) -> ByOffset {
        ByOffset {
            latest,
            signature: Signature::one_of(
                vec![
                    TypeSignature::Any(1),
                    TypeSignature::Any(2),
                    TypeSignature::Any(3),
                ],
                Volatility::Immutable,
            ),
        }
    }

    fn upper_name(&self) -> &'static str {
        if self.latest {
            "LATEST_BY_OFFSET"
        } else {
            "EARLIEST_BY_OFFSET"
        }
    }
}

/// The literal value of an aggregate's argument `i`.
fn literal_arg(args: &AccumulatorArgs, i: usize) -> Option<ScalarValue> {
    args.exprs.get(i).and_then(|e| {
        e.downcast_ref::<datafusion::physical_expr::expressions::Literal>()
            .map(|l| l.value().clone())
    })
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
        match arg_types {
            [t] | [t, DataType::Boolean] => Ok(t.clone()),
            [t, n] | [t, n, DataType::Boolean] if n.is_integer() => Ok(list_of(t)),
            _ => super::row::no_signature(self.upper_name(), arg_types),
        }
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let (mut n, mut ignore_nulls, mut many) = (1usize, true, false);
        for i in 1..args.exprs.len() {
            match literal_arg(&args, i) {
                Some(ScalarValue::Boolean(Some(b))) => ignore_nulls = b,
                Some(v) if super::row::int(&v).is_some() => {
                    let k = super::row::int(&v).unwrap_or(1);
                    if k <= 0 {
                        return datafusion::common::plan_err!(
                            "{} must be called with a positive number of values, got {k}",
                            self.upper_name()
                        );
                    }
                    n = k as usize;
                    many = true;
                }
                _ => {
                    return datafusion::common::plan_err!(
                        "{}'s arguments after the first must be literals",
                        self.upper_name()
                    )
                }
            }
        }
        let item = match args.return_field.data_type() {
            DataType::List(f) if many => f.data_type().clone(),
            other => other.clone(),
        };
        Ok(Box::new(ByOffsetAcc {
            latest: self.latest,
            n,
            many,
            ignore_nulls,
            item,
            values: Vec::new(),
        }))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = args.input_fields[0].data_type();
        Ok(vec![Arc::new(Field::new(
            format!("{}[values]", args.name),
            list_of(item),
            true,
        ))])
    }
}

#[derive(Debug)]
struct ByOffsetAcc {
    latest: bool,
    /// How many values are kept (1 without `n`).
    n: usize,
    many: bool,
    ignore_nulls: bool,
    item: DataType,
    /// The kept values in input order.
    values: Vec<ScalarValue>,
}

impl ByOffsetAcc {
    fn add(&mut self, v: ScalarValue) {
        if self.ignore_nulls && v.is_null() {
            return;
        }
        if self.latest {
            self.values.push(v);
            if self.values.len() > self.n {
                self.values.remove(0);
            }
        } else if self.values.len() < self.n {
            self.values.push(v);
        }
    }
}

impl Accumulator for ByOffsetAcc {
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
            let state = ScalarValue::try_from_array(a, i)?;
            let ignore = std::mem::replace(&mut self.ignore_nulls, false);
            for v in super::row::list_items(&state)?.unwrap_or_default() {
                self.add(v);
            }
            self.ignore_nulls = ignore;
        }
        Ok(())
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::List(ScalarValue::new_list_nullable(
            &self.values,
            &self.item,
        ))])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.many {
            return Ok(ScalarValue::List(ScalarValue::new_list_nullable(
                &self.values,
                &self.item,
            )));
        }
        match self.values.first() {
            Some(v) => Ok(v.clone()),
            None => ScalarValue::try_from(&self.item),
        }
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.iter().map(|v| v.size()).sum::<usize>()
    }
}

/// TOPK(col, k) / TOPKDISTINCT(col, k): the k largest (distinct) values, largest
/// first.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TopK {
    distinct: bool,
    signature: Signature,
}

impl TopK {
    fn new(distinct: bool) -> TopK {
        TopK {
            distinct,
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

fn list_of(t: &DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", t.clone(), true)))
}

impl AggregateUDFImpl for TopK {
    fn name(&self) -> &str {
        if self.distinct {
            "topkdistinct"
        } else {
            "topk"
        }
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
            distinct: self.distinct,
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
    distinct: bool,
    item: DataType,
    values: Vec<ScalarValue>,
}

impl TopKAcc {
    fn add(&mut self, v: ScalarValue) {
        if v.is_null() || (self.distinct && self.values.contains(&v)) {
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

/// COLLECT_SET(col): the distinct values in the order they first arrived (ksqlDB keeps
/// insertion order; DataFusion's DISTINCT array_agg hashes). ATTR(col): the value if
/// every row has the same one (NULL included), else NULL. Over a table a replaced
/// row's value is retracted.
#[derive(Debug, PartialEq, Eq, Hash)]
struct CollectSet {
    attr: bool,
    signature: Signature,
}

impl CollectSet {
    fn new(attr: bool) -> CollectSet {
        CollectSet {
            attr,
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for CollectSet {
    fn name(&self) -> &str {
        if self.attr {
            "attr"
        } else {
            "collect_set"
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(if self.attr {
            arg_types[0].clone()
        } else {
            list_of(&arg_types[0])
        })
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let item = match args.return_field.data_type() {
            DataType::List(f) if !self.attr => f.data_type().clone(),
            other => other.clone(),
        };
        Ok(Box::new(CollectSetAcc {
            attr: self.attr,
            item,
            values: Vec::new(),
        }))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[values]", args.name),
                list_of(args.input_fields[0].data_type()),
                true,
            )),
            Arc::new(Field::new(
                format!("{}[counts]", args.name),
                list_of(&DataType::Int64),
                true,
            )),
        ])
    }
}

/// The set with how many times each value was added, so a retraction removes a
/// value only when no other row still holds it.
#[derive(Debug)]
struct CollectSetAcc {
    attr: bool,
    item: DataType,
    values: Vec<(ScalarValue, usize)>,
}

impl CollectSetAcc {
    fn set(&self) -> ScalarValue {
        let values: Vec<ScalarValue> = self.values.iter().map(|(v, _)| v.clone()).collect();
        ScalarValue::List(ScalarValue::new_list_nullable(&values, &self.item))
    }

    fn add(&mut self, v: ScalarValue, n: usize) {
        match self.values.iter_mut().find(|(x, _)| same_value(x, &v)) {
            Some(slot) => slot.1 += n,
            None => self.values.push((v, n)),
        }
    }
}

impl Accumulator for CollectSetAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let a = &values[0];
        for i in 0..a.len() {
            self.add(ScalarValue::try_from_array(a, i)?, 1);
        }
        Ok(())
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let a = &values[0];
        for i in 0..a.len() {
            let v = ScalarValue::try_from_array(a, i)?;
            if let Some(pos) = self.values.iter().position(|(x, _)| same_value(x, &v)) {
                self.values[pos].1 -= 1;
                if self.values[pos].1 == 0 {
                    self.values.remove(pos);
                }
            }
        }
        Ok(())
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for i in 0..states[0].len() {
            let values = ScalarValue::try_from_array(&states[0], i)?;
            let counts = match states.get(1) {
                Some(c) => super::row::list_items(&ScalarValue::try_from_array(c, i)?)?,
                None => None,
            }
            .unwrap_or_default();
            for (j, v) in super::row::list_items(&values)?
                .unwrap_or_default()
                .into_iter()
                .enumerate()
            {
                let n = counts.get(j).and_then(super::row::int).unwrap_or(1);
                self.add(v, n.max(1) as usize);
            }
        }
        Ok(())
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let counts: Vec<ScalarValue> = self
            .values
            .iter()
            .map(|(_, n)| ScalarValue::Int64(Some(*n as i64)))
            .collect();
        Ok(vec![
            self.set(),
            ScalarValue::List(ScalarValue::new_list_nullable(&counts, &DataType::Int64)),
        ])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        if !self.attr {
            return Ok(self.set());
        }
        match self.values.as_slice() {
            [(v, _)] => Ok(v.clone()),
            _ => ScalarValue::try_from(&self.item),
        }
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.iter().map(|(v, _)| v.size()).sum::<usize>()
    }
}

/// Value equality where a map's entry order does not matter (ksqlDB's maps are
/// Java maps).
fn same_value(a: &ScalarValue, b: &ScalarValue) -> bool {
    match (a, b) {
        (ScalarValue::Map(_), _) | (ScalarValue::List(_), _) | (ScalarValue::Struct(_), _) => {
            crate::format::scalar_to_json(a) == crate::format::scalar_to_json(b)
                && a.data_type() == b.data_type()
        }
        _ => a == b,
    }
}

/// SUM_LIST(list): the sum of every element of every row's list (NULL elements
/// skipped); a replaced table row's elements are subtracted.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SumList {
    signature: Signature,
}

impl SumList {
    fn new() -> SumList {
        SumList {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for SumList {
    fn name(&self) -> &str {
        "sum_list"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first().and_then(super::row::item_type) {
            Some(DataType::Int32) => Ok(DataType::Int32),
            Some(DataType::Int64) => Ok(DataType::Int64),
            Some(t) if t.is_numeric() => Ok(DataType::Float64),
            _ => super::row::no_signature("SUM_LIST", arg_types),
        }
    }
    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let t = args.return_field.data_type().clone();
        Ok(Box::new(SumListAcc {
            sum: ScalarValue::Int64(Some(0)).cast_to(&t)?,
        }))
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[sum]", args.name),
            args.return_field.data_type().clone(),
            true,
        ))])
    }
}

#[derive(Debug)]
struct SumListAcc {
    sum: ScalarValue,
}

impl SumListAcc {
    fn apply(&mut self, lists: &ArrayRef, subtract: bool) -> Result<()> {
        let t = self.sum.data_type();
        for i in 0..lists.len() {
            let list = ScalarValue::try_from_array(lists, i)?;
            for x in super::row::list_items(&list)?.unwrap_or_default() {
                if x.is_null() {
                    continue;
                }
                let x = x.cast_to(&t)?;
                self.sum = if subtract {
                    self.sum.sub(x)?
                } else {
                    self.sum.add(x)?
                };
            }
        }
        Ok(())
    }
}

impl Accumulator for SumListAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.apply(&values[0], false)
    }
    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.apply(&values[0], true)
    }
    fn supports_retract_batch(&self) -> bool {
        true
    }
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for i in 0..states[0].len() {
            let v = ScalarValue::try_from_array(&states[0], i)?;
            if !v.is_null() {
                self.sum = self.sum.add(v)?;
            }
        }
        Ok(())
    }
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.sum.clone()])
    }
    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.sum.clone())
    }
    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}
