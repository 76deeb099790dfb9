//! STUB
use serde_json::Value;
use super::resource::Resource;
#[derive(Clone, Copy, Debug)]
pub enum IncludeObject { None, Metadata, Object }
pub fn wants_table(_accept: &str) -> bool { false }
pub fn table(_r: Resource, _o: &[Value], _rv: &str, _now: i64, _i: IncludeObject) -> Value { Value::Null }
