//! Object ids in stored records, written as git writes them: lowercase hex strings (the JSON
//! records written before ids were typed read the same). For `#[serde(with = ...)]`.

use std::collections::BTreeMap;

use gix_hash::ObjectId;
use serde::{Deserialize, Deserializer, Serializer};

/// One id as hex.
pub fn serialize<S: Serializer>(id: &ObjectId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&id.to_string())
}

/// One id from hex.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectId, D::Error> {
    let hex = String::deserialize(d)?;
    parse(&hex).map_err(serde::de::Error::custom)
}

fn parse(hex: &str) -> Result<ObjectId, String> {
    ObjectId::from_hex(hex.as_bytes()).map_err(|e| format!("object id {hex:?}: {e}"))
}

/// A list of ids, each as hex.
pub mod list {
    use super::*;

    /// Each id as hex.
    pub fn serialize<S: Serializer>(ids: &[ObjectId], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(ids.iter().map(ToString::to_string))
    }

    /// Each id from hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ObjectId>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|h| parse(h).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// A map of names to ids, each id as hex.
pub mod map {
    use super::*;

    /// Each id as hex.
    pub fn serialize<S: Serializer>(
        ids: &BTreeMap<String, ObjectId>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_map(ids.iter().map(|(k, v)| (k, v.to_string())))
    }

    /// Each id from hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, ObjectId>, D::Error> {
        BTreeMap::<String, String>::deserialize(d)?
            .into_iter()
            .map(|(k, h)| Ok((k, parse(&h).map_err(serde::de::Error::custom)?)))
            .collect()
    }
}
