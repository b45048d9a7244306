//! TEMPORARY stand-in while the codec is written elsewhere; replaced wholesale.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ChecksumForm {
    #[default]
    PseudoHeader,
    MessageOnly,
}
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    None,
    Pass(PassKey),
}
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassKey([u8; 8]);
impl Auth {
    pub fn type_number(&self) -> u8 {
        match self {
            Auth::None => 0,
            Auth::Pass(_) => 1,
        }
    }
    #[allow(clippy::result_unit_err)]
    pub fn pass(p: &str) -> Result<Auth, ()> {
        let mut k = [0u8; 8];
        k[..p.len()].copy_from_slice(p.as_bytes());
        Ok(Auth::Pass(PassKey(k)))
    }
}
