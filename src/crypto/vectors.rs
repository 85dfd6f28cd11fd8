//! Test-only reader for the known-answer files in `tests/vectors/`:
//! `name = HEX` (or `name_dec = decimal`) lines, grouped in `[section]`s.

/// A parsed vector file.
pub(crate) struct Vectors {
    sections: Vec<Section>,
}

/// The `name = value` lines under one `[title]` (or before the first one).
pub(crate) struct Section {
    title: String,
    entries: Vec<(String, String)>,
}

pub(crate) fn auth_key_sample() -> Vectors {
    parse(include_str!("../../tests/vectors/auth_key_sample.txt"))
}

pub(crate) fn rsa_pad_vector() -> Vectors {
    parse(include_str!("../../tests/vectors/rsa_pad_vector.txt"))
}

pub(crate) const TEST_PRIVATE_PEM: &str = include_str!("../../tests/vectors/test_rsa_2048.pem");
pub(crate) const TEST_PUBLIC_PEM: &str = include_str!("../../tests/vectors/test_rsa_2048.pub.pem");
pub(crate) const TEST_SPKI_PEM: &str = include_str!("../../tests/vectors/test_rsa_2048.spki.pem");

fn parse(text: &str) -> Vectors {
    let mut sections = vec![Section {
        title: String::new(),
        entries: Vec::new(),
    }];
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(title) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push(Section {
                title: title.to_owned(),
                entries: Vec::new(),
            });
        } else if let Some((name, value)) = line.split_once(" = ") {
            let last = sections.last_mut().unwrap();
            last.entries
                .push((name.trim().to_owned(), value.trim().to_owned()));
        } else {
            panic!("unparsable vector line: {line}");
        }
    }
    Vectors { sections }
}

impl Vectors {
    /// The section whose title is `prefix` followed by `:` or the end, e.g.
    /// `"step 6.1"` for `[step 6.1: decrypt ...]`; `""` for the lines before
    /// any title.
    pub(crate) fn section(&self, prefix: &str) -> &Section {
        self.sections
            .iter()
            .find(|s| {
                s.title == prefix
                    || s.title
                        .strip_prefix(prefix)
                        .is_some_and(|rest| rest.starts_with(':'))
            })
            .unwrap_or_else(|| panic!("no section {prefix:?}"))
    }
}

impl Section {
    pub(crate) fn raw(&self, name: &str) -> &str {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no value {name:?} in [{}]", self.title))
    }

    /// A hex value as bytes.
    pub(crate) fn bytes(&self, name: &str) -> Vec<u8> {
        hex(self.raw(name))
    }

    /// A `_dec` value, which must fit in a u64.
    pub(crate) fn u64(&self, name: &str) -> u64 {
        self.raw(name).parse().unwrap()
    }
}

pub(crate) fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A decimal number as big-endian bytes without leading zeros (tests only:
/// schoolbook base conversion).
pub(crate) fn dec_to_be(s: &str) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new(); // little-endian while building
    for d in s.bytes() {
        assert!(d.is_ascii_digit());
        let mut carry = u32::from(d - b'0');
        for b in out.iter_mut() {
            let v = u32::from(*b) * 10 + carry;
            *b = v as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            out.push(carry as u8);
            carry >>= 8;
        }
    }
    out.reverse();
    out
}

#[test]
fn parser_reads_both_files() {
    let v = auth_key_sample();
    assert_eq!(v.section("step 3").u64("p_dec"), 1513098571);
    assert_eq!(
        v.section("step 1").bytes("constructor"),
        [0xF1, 0x8E, 0x7E, 0xBE]
    );
    let r = rsa_pad_vector();
    assert_eq!(dec_to_be(r.section("").raw("e_dec")), [1, 0, 1]);
    assert_eq!(dec_to_be(r.section("").raw("n_dec")).len(), 256);
}
