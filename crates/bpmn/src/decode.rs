//! Turns the bytes of a BPMN file into text, honouring the encoding its XML
//! declaration names (UTF-8, UTF-16 with a byte-order mark, ISO-8859-1 and
//! windows-1252, which modelling tools still write).

use crate::read::MAX_XML_BYTES;
use crate::Diagnostic;

/// windows-1252 characters for the bytes 0x80..=0x9F (ISO-8859-1 has control codes there).
const WINDOWS_1252_HIGH: [char; 32] = [
    '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž', '\u{8F}', '\u{90}', '‘', '’', '“', '”', '•', '–',
    '—', '˜', '™', 'š', '›', 'œ', '\u{9D}', 'ž', 'Ÿ',
];

pub fn decode(bytes: &[u8]) -> Result<String, Diagnostic> {
    if bytes.len() > MAX_XML_BYTES {
        return Err(Diagnostic::error(
            "xml-too-large",
            None,
            (1, 1),
            format!("the file is {} bytes; the limit is {MAX_XML_BYTES}", bytes.len()),
        ));
    }
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return utf8(rest);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return utf16(rest, u16::from_be_bytes);
    }
    match declared_encoding(bytes).as_deref() {
        None | Some("utf-8" | "utf8") => utf8(bytes),
        Some("iso-8859-1" | "latin1" | "iso_8859-1" | "us-ascii" | "ascii") => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
        Some("windows-1252" | "cp1252") => Ok(bytes
            .iter()
            .map(|&b| if (0x80..=0x9F).contains(&b) { WINDOWS_1252_HIGH[usize::from(b - 0x80)] } else { char::from(b) })
            .collect()),
        Some(other) => Err(Diagnostic::error(
            "xml-encoding",
            None,
            (1, 1),
            format!("the file is encoded as {other}; Baton reads UTF-8, UTF-16, ISO-8859-1 and windows-1252"),
        )),
    }
}

/// The `encoding` of the XML declaration, lower-cased.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(200)];
    let head = String::from_utf8_lossy(head);
    let declaration = head.strip_prefix("<?xml")?;
    let declaration = &declaration[..declaration.find("?>")?];
    let at = declaration.find("encoding")?;
    let value = declaration[at + "encoding".len()..].trim_start().strip_prefix('=')?.trim_start();
    let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &value[1..];
    Some(value[..value.find(quote)?].to_ascii_lowercase())
}

fn utf8(bytes: &[u8]) -> Result<String, Diagnostic> {
    String::from_utf8(bytes.to_vec()).map_err(|error| {
        let offset = error.utf8_error().valid_up_to();
        let before = &bytes[..offset];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = offset - before.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) + 1;
        Diagnostic::error(
            "xml-encoding",
            None,
            (line as u32, column as u32),
            "the file is not valid UTF-8 although it says so (or says nothing): save it as UTF-8, or declare its real encoding".into(),
        )
    })
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String, Diagnostic> {
    let units: Vec<u16> = bytes.chunks_exact(2).map(|pair| unit([pair[0], pair[1]])).collect();
    String::from_utf16(&units).map_err(|_| Diagnostic::error("xml-encoding", None, (1, 1), "the file is not valid UTF-16".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_encodings_are_honoured() {
        let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>\xE9</a>";
        assert_eq!(decode(latin1).unwrap(), "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>é</a>");
        let cp1252 = b"<?xml version='1.0' encoding='windows-1252'?><a>\x80</a>";
        assert!(decode(cp1252).unwrap().contains("<a>€</a>"));
        let utf16: Vec<u8> = [0xFF, 0xFE].into_iter().chain("<a>é</a>".encode_utf16().flat_map(u16::to_le_bytes)).collect();
        assert_eq!(decode(&utf16).unwrap(), "<a>é</a>");
        let lying = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a>\xE9</a>";
        let diagnostic = decode(lying).unwrap_err();
        assert_eq!((diagnostic.code.as_str(), diagnostic.line, diagnostic.column), ("xml-encoding", 2, 4));
        assert_eq!(decode(b"<?xml version=\"1.0\" encoding=\"EBCDIC\"?><a/>").unwrap_err().code, "xml-encoding");
    }
}
