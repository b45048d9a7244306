//! VRRPv2 authentication: none, or the simple text password (PASS) that RFC 2338 §5.3.6.2
//! defined and RFC 3768 §5.3.6 keeps as auth type 1 for compatibility.
//!
//! PASS protects against nothing an attacker on the link cannot read off the wire; what it
//! does is keep two misconfigured groups that share a VRID from fighting. The password is
//! still kept out of `Debug` and error messages, because logs travel further than packets.

use super::V2_AUTH_DATA_LEN;
use core::fmt;

/// What a VRRPv2 instance puts in, and expects in, the authentication fields.
///
/// VRRPv3 has no authentication (RFC 9568 §9); a v3 instance uses `Auth::None`.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// Auth type 0: the authentication data is zero on send and ignored on receive
    /// (RFC 3768 §5.3.10).
    None,
    /// Auth type 1: the authentication data is the password, which must match exactly.
    Pass(PassKey),
}

/// A PASS password as the packet carries it: zero-padded to 8 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct PassKey([u8; V2_AUTH_DATA_LEN]);

impl PassKey {
    pub(crate) const fn as_bytes(&self) -> &[u8; V2_AUTH_DATA_LEN] {
        &self.0
    }
}

impl fmt::Debug for PassKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PassKey(<redacted>)")
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Pass(_) => f.write_str("Pass(<redacted>)"),
        }
    }
}

/// Why a PASS password cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the PASS password is empty; set 1 to 8 bytes, or use no authentication")]
    Empty,
    #[error(
        "the PASS password is {len} bytes, but VRRPv2 carries at most 8; keepalived silently \
         truncates to 8; havip refuses, so configure the 8 bytes the other routers really send"
    )]
    TooLong { len: usize },
    #[error(
        "the PASS password contains a NUL byte; on the wire it would be the same password as \
         the part before the NUL, so remove it"
    )]
    ContainsNul,
}

impl Auth {
    /// PASS authentication with `password`, 1 to 8 bytes (not characters: UTF-8 beyond
    /// ASCII takes more than one byte each).
    ///
    /// A longer password is an error rather than being cut to 8 bytes: keepalived silently
    /// truncates, so `secret123` and `secret12` would interoperate there and an operator
    /// would never learn that only 8 bytes count.
    pub fn pass(password: &str) -> Result<Auth, AuthError> {
        let bytes = password.as_bytes();
        if bytes.is_empty() {
            return Err(AuthError::Empty);
        }
        if bytes.contains(&0) {
            return Err(AuthError::ContainsNul);
        }
        let mut key = [0u8; V2_AUTH_DATA_LEN];
        key.get_mut(..bytes.len())
            .ok_or(AuthError::TooLong { len: bytes.len() })?
            .copy_from_slice(bytes);
        Ok(Auth::Pass(PassKey(key)))
    }

    /// The auth type number carried in the packet: 0 for none, 1 for PASS.
    pub const fn type_number(&self) -> u8 {
        match self {
            Auth::None => 0,
            Auth::Pass(_) => 1,
        }
    }

    /// The 8 bytes of authentication data a v2 packet carries.
    pub(crate) const fn data(&self) -> [u8; V2_AUTH_DATA_LEN] {
        match self {
            Auth::None => [0; V2_AUTH_DATA_LEN],
            Auth::Pass(key) => key.0,
        }
    }
}

/// How an auth type number reads in an error message.
pub(crate) struct AuthTypeName(pub(crate) u8);

impl fmt::Display for AuthTypeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("none"),
            1 => f.write_str("PASS"),
            2 => f.write_str("auth type 2 (RFC 2338's IP Authentication Header, unsupported)"),
            n => write!(f, "unknown auth type {n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2338 §5.3.6.2: the password is carried zero-padded in the 8-byte field.
    #[test]
    fn rfc2338_5_3_6_2_pass_key_is_zero_padded_to_8_bytes() {
        let auth = Auth::pass("abc").unwrap();
        assert_eq!(auth.data(), *b"abc\0\0\0\0\0");
        assert_eq!(Auth::pass("12345678").unwrap().data(), *b"12345678");
        assert_eq!(Auth::None.data(), [0; 8]);
    }

    /// RFC 3768 §5.3.6: the auth type numbers.
    #[test]
    fn rfc3768_5_3_6_auth_type_numbers() {
        assert_eq!(Auth::None.type_number(), 0);
        assert_eq!(Auth::pass("x").unwrap().type_number(), 1);
    }

    #[test]
    fn pass_refuses_empty_long_and_nul_passwords() {
        assert_eq!(Auth::pass(""), Err(AuthError::Empty));
        assert_eq!(Auth::pass("123456789"), Err(AuthError::TooLong { len: 9 }));
        // Eight characters, but nine bytes.
        assert_eq!(Auth::pass("1234567é"), Err(AuthError::TooLong { len: 9 }));
        assert_eq!(Auth::pass("ab\0"), Err(AuthError::ContainsNul));
        let msg = AuthError::TooLong { len: 9 }.to_string();
        assert!(
            msg.contains("keepalived silently truncates to 8; havip refuses"),
            "{msg}"
        );
    }

    #[test]
    fn debug_does_not_leak_the_password() {
        let auth = Auth::pass("hunter2").unwrap();
        let shown = format!("{auth:?} {auth:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("104"), "{shown}"); // 'h' as a byte
        assert_eq!(format!("{auth:?}"), "Pass(<redacted>)");
        if let Auth::Pass(key) = &auth {
            assert_eq!(format!("{key:?}"), "PassKey(<redacted>)");
        }
        assert_eq!(format!("{:?}", Auth::None), "None");
    }

    #[test]
    fn auth_type_names_read_well() {
        assert_eq!(AuthTypeName(0).to_string(), "none");
        assert_eq!(AuthTypeName(1).to_string(), "PASS");
        assert!(AuthTypeName(2).to_string().contains("unsupported"));
        assert_eq!(AuthTypeName(254).to_string(), "unknown auth type 254");
    }
}
