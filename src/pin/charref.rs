//! HTML character references in attribute values, decoded as a browser's
//! tokenizer decodes them (`lol_html` hands values over undecoded), so that
//! `src="/sdk/l&#97;test/…"` is seen as the `latest/` URL the browser loads.
//!
//! Fails closed: numeric references and the named references whose meaning
//! is known here (the legacy Latin-1 set and every name for an ASCII
//! character) are decoded; any other `&name;` might be one of the ~2,000
//! names of the HTML standard, so the value is refused as ambiguous rather
//! than read as something the browser does not read.

use std::borrow::Cow;

/// Named references decoded also without `;` (the HTML 4 Latin-1 set, in
/// code point order from U+00A0), each also with `;`.
const LATIN1: [&str; 96] = [
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf", "laquo", "not", "shy",
    "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro", "para", "middot", "cedil", "sup1", "ordm",
    "raquo", "frac14", "frac12", "frac34", "iquest", "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig",
    "Ccedil", "Egrave", "Eacute", "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve",
    "Oacute", "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute", "THORN",
    "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig", "ccedil", "egrave", "eacute", "ecirc",
    "euml", "igrave", "iacute", "icirc", "iuml", "eth", "ntilde", "ograve", "oacute", "ocirc", "otilde", "ouml",
    "divide", "oslash", "ugrave", "uacute", "ucirc", "uuml", "yacute", "thorn", "yuml",
];

/// The other legacy names (decoded without `;` too).
const LEGACY_ASCII: [(&str, &str); 10] = [
    ("amp", "&"),
    ("AMP", "&"),
    ("lt", "<"),
    ("LT", "<"),
    ("gt", ">"),
    ("GT", ">"),
    ("quot", "\""),
    ("QUOT", "\""),
    ("COPY", "\u{a9}"),
    ("REG", "\u{ae}"),
];

/// Names decoded only with `;` that stand for ASCII text.
const ASCII: [(&str, &str); 42] = [
    ("Tab", "\t"),
    ("NewLine", "\n"),
    ("excl", "!"),
    ("num", "#"),
    ("dollar", "$"),
    ("percnt", "%"),
    ("apos", "'"),
    ("lpar", "("),
    ("rpar", ")"),
    ("ast", "*"),
    ("midast", "*"),
    ("plus", "+"),
    ("comma", ","),
    ("period", "."),
    ("sol", "/"),
    ("colon", ":"),
    ("semi", ";"),
    ("equals", "="),
    ("quest", "?"),
    ("commat", "@"),
    ("lsqb", "["),
    ("lbrack", "["),
    ("bsol", "\\"),
    ("rsqb", "]"),
    ("rbrack", "]"),
    ("Hat", "^"),
    ("lowbar", "_"),
    ("UnderBar", "_"),
    ("grave", "`"),
    ("DiacriticalGrave", "`"),
    ("lcub", "{"),
    ("lbrace", "{"),
    ("verbar", "|"),
    ("vert", "|"),
    ("VerticalLine", "|"),
    ("rcub", "}"),
    ("rbrace", "}"),
    ("fjlig", "fj"),
    ("hyphen", "\u{2010}"),
    ("dash", "\u{2010}"),
    ("ndash", "\u{2013}"),
    ("mdash", "\u{2014}"),
];

/// A legacy name's text, if `name` is one.
fn legacy(name: &str) -> Option<Cow<'static, str>> {
    if let Some(i) = LATIN1.iter().position(|n| *n == name) {
        let c = char::from_u32(0xA0 + i as u32)?;
        return Some(Cow::Owned(c.to_string()));
    }
    LEGACY_ASCII.iter().find(|(n, _)| *n == name).map(|(_, t)| Cow::Borrowed(*t))
}

/// Decodes the character references in an attribute value; `Err` names a
/// reference whose meaning is not known here.
pub(crate) fn decode(value: &str) -> Result<Cow<'_, str>, String> {
    if !value.contains('&') {
        return Ok(Cow::Borrowed(value));
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (text, used) = match after.strip_prefix('#') {
            Some(num) => numeric(num)?.map_or((None, 0), |(c, n)| (Some(Cow::Owned(c.to_string())), n + 1)),
            None => named(after)?,
        };
        match text {
            Some(text) => out.push_str(&text),
            None => out.push('&'),
        }
        rest = &after[used..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// `&#…`: the character and the bytes used after `#`, or `None` if it is no reference.
fn numeric(s: &str) -> Result<Option<(char, usize)>, String> {
    let (radix, digits_at) = match s.as_bytes().first() {
        Some(b'x' | b'X') => (16, 1),
        _ => (10, 0),
    };
    let digits = s[digits_at..].chars().take_while(|c| c.is_digit(radix)).count();
    if digits == 0 {
        return Ok(None);
    }
    let end = digits_at + digits;
    let used = end + usize::from(s[end..].starts_with(';'));
    let code = u32::from_str_radix(s[digits_at..end].trim_start_matches('0'), radix).unwrap_or(u32::MAX);
    let code = if s[digits_at..end].trim_start_matches('0').is_empty() { 0 } else { code };
    // The C1 range is remapped through windows-1252 by browsers: not decoded here.
    if (0x80..=0x9F).contains(&code) {
        return Err(format!("&#{};", &s[..end]));
    }
    let c = match code {
        0 => '\u{FFFD}',
        c => char::from_u32(c).unwrap_or('\u{FFFD}'),
    };
    Ok(Some((c, used)))
}

/// `&name…`: the text and the bytes used, or no text for a literal `&`.
fn named(s: &str) -> Result<(Option<Cow<'static, str>>, usize), String> {
    let run = s.bytes().take_while(u8::is_ascii_alphanumeric).count();
    if run == 0 {
        return Ok((None, 0));
    }
    let name = &s[..run];
    if s[run..].starts_with(';') {
        if let Some(text) = legacy(name) {
            return Ok((Some(text), run + 1));
        }
        if let Some((_, text)) = ASCII.iter().find(|(n, _)| *n == name) {
            return Ok((Some(Cow::Borrowed(*text)), run + 1));
        }
        return Err(format!("&{name};"));
    }
    // Without `;`, only a legacy name is decoded, and in an attribute not before `=`.
    match legacy(name) {
        Some(text) if !s[run..].starts_with('=') => Ok((Some(text), run)),
        _ => Ok((None, 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn references_decode_as_in_a_browser() {
        for (raw, decoded) in [
            ("/sdk/l&#97;test/a.js", "/sdk/latest/a.js"),
            ("/sdk/l&#x61test/a.js", "/sdk/latest/a.js"),
            ("/sdk/lat&Tab;est/a.js", "/sdk/lat\test/a.js"),
            ("/sdk&sol;latest/a.js", "/sdk/latest/a.js"),
            ("a.js?x=1&amp;y=2", "a.js?x=1&y=2"),
            ("a.js?x=1&copy=2", "a.js?x=1&copy=2"),
            ("a.js?x=1&copy/", "a.js?x=1\u{a9}/"),
            ("a.js?x=1&notit", "a.js?x=1&notit"),
            ("a & b &#; &", "a & b &#; &"),
            ("&yuml;&nbsp", "\u{ff}\u{a0}"),
            ("&#0;&#x110000;", "\u{fffd}\u{fffd}"),
        ] {
            assert_eq!(decode(raw).unwrap(), decoded, "{raw}");
        }
    }

    #[test]
    fn unknown_names_and_c1_codes_are_ambiguous() {
        assert_eq!(decode("/sdk/&lscr;atest/a.js").unwrap_err(), "&lscr;");
        assert_eq!(decode("/sdk/&#128;/a.js").unwrap_err(), "&#128;");
    }
}
