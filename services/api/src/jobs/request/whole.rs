//! Whole numbers as JSON Schema counts them: `5` and `5.0` are both the integer 5, so a
//! request the document's `"type": "integer"` admits is one the api reads. serde alone would
//! refuse `5.0` for a `u32`.

use serde::{Deserialize, Deserializer, de::Error};

/// An optional whole number that fits `T`; `null` and absence are `None`.
pub fn option<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            // Below 2^53 every whole f64 is exact; the cap keeps `as` from saturating.
            .filter(|f| f.fract() == 0.0 && (0.0..9_007_199_254_740_992.0).contains(f))
            .map(|f| f as u64)
    });
    whole
        .and_then(|n| T::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| {
            D::Error::custom(format!(
                "invalid value: {number}, expected a whole number in range"
            ))
        })
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    struct Side {
        #[serde(default, deserialize_with = "super::option")]
        width: Option<u32>,
    }

    fn width(json: &str) -> Result<Option<u32>, String> {
        serde_json::from_str::<Side>(json)
            .map(|s| s.width)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn integral_floats_are_whole_numbers_and_the_rest_is_refused() {
        assert_eq!(width(r#"{"width": 4672}"#), Ok(Some(4672)));
        assert_eq!(width(r#"{"width": 4672.0}"#), Ok(Some(4672)));
        assert_eq!(width(r#"{"width": null}"#), Ok(None));
        assert_eq!(width("{}"), Ok(None));
        for bad in ["4672.5", "-1", "4294967296", "1e300", "\"5\""] {
            assert!(width(&format!(r#"{{"width": {bad}}}"#)).is_err(), "{bad}");
        }
    }
}
