//! Capability tokens: who may do what in a room, without accounts. A token is
//! `<kind><number>.<secret>`: the prefix names the participant (`p`) or invitation (`i`) so the
//! room finds it without a lookup by secret, and the 128-bit secret is compared in constant time.

use std::fmt::Write as _;

use subtle::ConstantTimeEq;

/// 128 random bits.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; 16]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A fresh secret from the operating system's generator.
    ///
    /// # Errors
    /// The generator failed (no entropy source).
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    /// Lower-case hex.
    #[must_use]
    pub fn to_hex(&self) -> String {
        self.0.iter().fold(String::with_capacity(32), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// Whether `hex` is this secret, in time that does not depend on where they differ.
    #[must_use]
    pub fn matches(&self, hex: &str) -> bool {
        let Some(other) = parse_hex(hex) else {
            return false;
        };
        self.0.ct_eq(&other).into()
    }
}

fn parse_hex(hex: &str) -> Option<[u8; 16]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// What a token names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRef {
    /// A participant's own token.
    Participant(u64),
    /// An invitation (co-host or speaker link).
    Invite(u64),
}

/// Splits a token into what it names and its secret part; `None` if it is not a Booth token.
#[must_use]
pub fn parse(token: &str) -> Option<(TokenRef, &str)> {
    let (head, secret) = token.trim().split_once('.')?;
    let kind = head.chars().next()?;
    let number: u64 = head.get(1..)?.parse().ok()?;
    let r = match kind {
        'p' => TokenRef::Participant(number),
        'i' => TokenRef::Invite(number),
        _ => return None,
    };
    Some((r, secret))
}

/// Formats a token.
#[must_use]
pub fn format(r: TokenRef, secret: &Secret) -> String {
    match r {
        TokenRef::Participant(n) => format!("p{n}.{}", secret.to_hex()),
        TokenRef::Invite(n) => format!("i{n}.{}", secret.to_hex()),
    }
}

/// The characters of [`random_id`]: 32 of them (no `l`, `o`, `0`, `1` to misread), so each
/// carries 5 bits and a byte maps onto them without bias.
pub const ID_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// Characters in a room id: 16 x 5 = 80 random bits, so a room's public link cannot be
/// guessed by walking ids.
pub const ROOM_ID_CHARS: usize = 16;

/// A fresh room id ([`ROOM_ID_CHARS`] characters of [`ID_ALPHABET`]).
///
/// # Errors
/// The generator failed.
pub fn room_id() -> Result<String, getrandom::Error> {
    random_id(ROOM_ID_CHARS)
}

/// A random URL-safe identifier of `len` characters (room and session ids).
///
/// # Errors
/// The generator failed.
pub fn random_id(len: usize) -> Result<String, getrandom::Error> {
    const ALPHABET: &[u8] = ID_ALPHABET;
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes)?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_wrong_secrets() {
        let secret = Secret::generate().unwrap_or(Secret([7; 16]));
        let token = format(TokenRef::Participant(42), &secret);
        let (r, hex) = parse(&token).unwrap_or((TokenRef::Invite(0), ""));
        assert_eq!(r, TokenRef::Participant(42));
        assert!(secret.matches(hex));
        assert!(!secret.matches(&"0".repeat(32)));
        assert!(!secret.matches("zz"));
        assert_eq!(parse("nonsense"), None);
        assert_eq!(parse("x1.abc"), None);
    }

    #[test]
    fn room_ids_carry_at_least_80_bits_of_url_safe_characters() {
        let bits_per_char = f64::from(u32::try_from(ID_ALPHABET.len()).unwrap()).log2();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let id = room_id().unwrap();
            assert!(id.len() as f64 * bits_per_char >= 80.0, "{id}");
            assert!(id.bytes().all(|b| ID_ALPHABET.contains(&b)), "{id}");
            assert!(seen.insert(id));
        }
        // Every character of the alphabet turns up: the generator uses all 5 bits.
        let used: std::collections::HashSet<u8> = seen.iter().flat_map(|i| i.bytes()).collect();
        assert_eq!(used.len(), ID_ALPHABET.len());
    }
}
