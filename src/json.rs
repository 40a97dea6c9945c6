//! JSON read from bytes with the UTF-8 check done once.
//!
//! `serde_json::from_slice` checks every string it borrows or copies for UTF-8, one by one
//! (and again inside every raw value read later); on a result line or an answer that is most
//! of the parse. Checking the whole buffer once (a fast, vectorised pass) and parsing it as
//! text gives the same values and the same errors.

use serde::Deserialize;

/// Deserializes `bytes`: as text when they are valid UTF-8, else byte by byte (serde_json then
/// reports where the bad byte is, as before).
pub fn from_bytes<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, serde_json::Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_bytes_read_alike() {
        let ok: (String, u8) = from_bytes(b"[\"caf\\u00e9 \xc3\xa9\", 7]").unwrap();
        assert_eq!(ok, ("café é".to_string(), 7));
        let bad = from_bytes::<String>(b"\"\xff\"").unwrap_err();
        let slice = serde_json::from_slice::<String>(b"\"\xff\"").unwrap_err();
        assert_eq!(bad.to_string(), slice.to_string());
        let broken = from_bytes::<Vec<u8>>(b"[1, 2").unwrap_err();
        let slice = serde_json::from_slice::<Vec<u8>>(b"[1, 2").unwrap_err();
        assert_eq!(broken.to_string(), slice.to_string());
    }
}
