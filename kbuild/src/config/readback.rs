//! The read-back of variables from bash: `name\0value\0` pairs, as the
//! session prints them with `printf '%s\0%s\0'`. Bash values cannot hold a
//! NUL, so the split is unambiguous and keeps every other byte (newlines,
//! quotes, `$`) exactly.

use std::collections::BTreeMap;

use crate::error::ConfigError;

/// Parses the session's read-back into name -> value.
pub fn parse(bytes: &[u8]) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ConfigError::Readback {
        detail: format!("not UTF-8 ({e})"),
    })?;
    let Some(body) = text.strip_suffix('\0') else {
        return if text.is_empty() {
            Ok(BTreeMap::new())
        } else {
            Err(ConfigError::Readback {
                detail: "it does not end with a NUL".into(),
            })
        };
    };
    let fields: Vec<&str> = body.split('\0').collect();
    if !fields.len().is_multiple_of(2) {
        return Err(ConfigError::Readback {
            detail: format!("{} fields, an odd count", fields.len()),
        });
    }
    Ok(fields
        .chunks(2)
        .map(|pair| (pair[0].to_owned(), pair[1].to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_read_back_is_no_variables() {
        assert!(parse(b"").unwrap().is_empty());
    }

    #[test]
    fn values_keep_newlines_quotes_and_empty_strings() {
        let got =
            parse(b"MAKE_GOALS\0\nbzImage\nmodules\n\0KCFLAGS\0-D'x' \"y\" $z\0LD\0\0").unwrap();
        assert_eq!(got["MAKE_GOALS"], "\nbzImage\nmodules\n");
        assert_eq!(got["KCFLAGS"], "-D'x' \"y\" $z");
        assert_eq!(got["LD"], "");
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn odd_field_count_is_an_error() {
        let err = parse(b"ARCH\0x86_64\0LLVM\0").unwrap_err();
        assert!(err.to_string().contains("odd count"), "{err}");
    }

    #[test]
    fn missing_final_nul_is_an_error() {
        let err = parse(b"ARCH\0x86_64").unwrap_err();
        assert!(err.to_string().contains("does not end with a NUL"), "{err}");
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let err = parse(b"ARCH\0\xff\0").unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }
}
