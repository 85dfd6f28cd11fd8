//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;

/// Decodes upper- or lower-case hex.
pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// The `name = HEX` values of a vectors file, by section (`[step N: ...]`).
pub struct Vectors {
    sections: Vec<(String, HashMap<String, String>)>,
}

impl Vectors {
    pub fn parse(text: &str) -> Self {
        let mut sections: Vec<(String, HashMap<String, String>)> =
            vec![(String::new(), HashMap::new())];
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with('[') {
                sections.push((line.trim_matches(['[', ']']).to_string(), HashMap::new()));
                continue;
            }
            let (k, v) = line.split_once(" = ").expect("name = value");
            sections
                .last_mut()
                .unwrap()
                .1
                .insert(k.trim().to_string(), v.trim().to_string());
        }
        Self { sections }
    }

    /// Raw text of `name` in the section whose title starts with `section`.
    pub fn text(&self, section: &str, name: &str) -> &str {
        let (_, map) = self
            .sections
            .iter()
            .find(|(t, _)| t.starts_with(section))
            .unwrap_or_else(|| panic!("no section {section}"));
        map.get(name)
            .unwrap_or_else(|| panic!("no {name} in {section}"))
    }

    /// `name` in `section`, hex-decoded.
    pub fn bytes(&self, section: &str, name: &str) -> Vec<u8> {
        hex(self.text(section, name))
    }

    /// `name` in `section` as a fixed array.
    pub fn array<const N: usize>(&self, section: &str, name: &str) -> [u8; N] {
        self.bytes(section, name).try_into().expect("array length")
    }

    /// `name_dec` in `section`, decimal.
    pub fn dec(&self, section: &str, name: &str) -> u64 {
        self.text(section, name).parse().expect("decimal")
    }
}

pub fn auth_key_sample() -> Vectors {
    Vectors::parse(include_str!("../vectors/auth_key_sample.txt"))
}
