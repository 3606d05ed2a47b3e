//! A policy document read as JSON whose objects name each member once.
//!
//! `serde_json::Value` keeps the last of two members of one name and drops the first without
//! a word, so `{"Effect": "Deny", ..., "Effect": "Allow"}` or a `Condition` naming
//! `IpAddress` twice would be stored and half-enforced. A document naming a member twice is
//! refused instead, naming the member.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses `text`; the error is the message for `MalformedPolicy`.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut reader = serde_json::Deserializer::from_str(text);
    let value = reader.deserialize_any(Strict).map_err(message)?;
    reader.end().map_err(message)?;
    Ok(value)
}

/// A duplicate member names itself; anything else is not JSON (AWS's wording).
fn message(e: serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Data => e.to_string(),
        _ => "This policy contains invalid Json".to_owned(),
    }
}

struct Strict;

impl<'de> de::DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(Strict)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            let value = map.next_value_seed(Strict)?;
            if members.contains_key(&name) {
                return Err(de::Error::custom(format!("Duplicate field {name}")));
            }
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_named_twice_is_refused_by_name() {
        let e = parse(r#"{"a":{"Effect":"Deny","Effect":"Allow"}}"#).unwrap_err();
        assert!(e.starts_with("Duplicate field Effect"), "{e}");
        assert_eq!(
            parse(r#"{"a":[1,{"b":true}],"c":null,"d":-1.5}"#).unwrap(),
            serde_json::json!({"a":[1,{"b":true}],"c":null,"d":-1.5})
        );
        for bad in ["{", "{} x", "nope", ""] {
            assert_eq!(parse(bad).unwrap_err(), "This policy contains invalid Json");
        }
    }
}
