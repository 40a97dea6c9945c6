//! Hints for input that is not UTF-8: which encoding the bytes look like, and the `iconv`
//! command that converts the file.

use std::path::Path;

/// The encoding a UTF-16 byte order mark at the start of `head` names, if any.
pub(super) fn utf16_by_bom(head: &[u8]) -> Option<&'static str> {
    match head {
        [0xFF, 0xFE, ..] => Some("UTF-16LE"),
        [0xFE, 0xFF, ..] => Some("UTF-16BE"),
        _ => None,
    }
}

/// The single-byte encoding invalid UTF-8 `bytes` most likely are: Windows-1252 when a byte
/// in 0x80..=0x9F appears (printable there only in Windows-1252: `€`, `’`, `“`..), else
/// Latin-1 (ISO-8859-1).
pub(super) fn guess_single_byte(bytes: &[u8]) -> &'static str {
    if bytes.iter().any(|b| (0x80..=0x9F).contains(b)) {
        "WINDOWS-1252"
    } else {
        "ISO-8859-1"
    }
}

/// `: the file looks like ENC, not UTF-8; convert it: iconv -f ENC -t UTF-8 IN > OUT`.
pub(super) fn convert_hint(path: &Path, encoding: &str) -> String {
    let name = path.display().to_string();
    let out = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.contains('/') => {
            format!("{stem}.utf8.{ext}")
        }
        _ => format!("{name}.utf8"),
    };
    let shown = match encoding {
        "WINDOWS-1252" => "Windows-1252 (or Latin-1)",
        "ISO-8859-1" => "Latin-1 (ISO-8859-1) or Windows-1252",
        other => other,
    };
    format!(
        "the file looks like {shown}, not UTF-8; convert it with: \
         iconv -f {encoding} -t UTF-8 '{name}' > '{out}'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_and_hints() {
        assert_eq!(utf16_by_bom(b"\xFF\xFEi\0d\0"), Some("UTF-16LE"));
        assert_eq!(utf16_by_bom(b"\xFE\xFF\0i"), Some("UTF-16BE"));
        assert_eq!(utf16_by_bom(b"id,text"), None);
        assert_eq!(guess_single_byte(b"Tr\xe8s \x80"), "WINDOWS-1252");
        assert_eq!(guess_single_byte(b"Tr\xe8s"), "ISO-8859-1");
        assert_eq!(
            convert_hint(Path::new("data/in.csv"), "WINDOWS-1252"),
            "the file looks like Windows-1252 (or Latin-1), not UTF-8; convert it with: \
             iconv -f WINDOWS-1252 -t UTF-8 'data/in.csv' > 'data/in.utf8.csv'"
        );
    }
}
