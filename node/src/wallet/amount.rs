//! TKS amounts as people write them ("1.5") and as the chain counts them (base units, u128).
//!
//! 1 TKS = 10^9 base units, so a TKS amount has at most 9 decimal places. Parsing is exact
//! (integer arithmetic on the digits, never floating point) and refuses anything ambiguous:
//! signs, exponents, separators, empty parts and more than 9 decimals.

/// Base units in one TKS.
pub(crate) const BASE_UNITS_PER_TKS: u128 = 1_000_000_000;
/// Decimal places of a TKS amount.
pub(crate) const TKS_DECIMALS: usize = 9;
/// The longest amount text accepted, in bytes (u128 has 39 digits, plus the point).
const AMOUNT_TEXT_BYTES_MAX: usize = 48;

/// Why an amount text is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AmountError {
    /// Not of the form `123`, `123.456` or `.5`.
    #[error("`{0}` is not an amount: write TKS as digits with an optional point, like 1.5")]
    Malformed(String),
    /// More than nine decimal places.
    #[error("`{0}` has more than 9 decimal places (1 base unit = 0.000000001 TKS)")]
    TooManyDecimals(String),
    /// Larger than a u128 of base units.
    #[error("`{0}` is too large")]
    Overflow(String),
}

/// Parses a TKS amount written in decimal ("1.5", "0.000000001", "42") into base units.
pub(crate) fn parse_tks(text: &str) -> Result<u128, AmountError> {
    let shown: String = text.chars().take(AMOUNT_TEXT_BYTES_MAX).collect();
    if text.len() > AMOUNT_TEXT_BYTES_MAX {
        return Err(AmountError::Overflow(shown));
    }
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !all_digits(whole) || !all_digits(frac) || text.ends_with('.') {
        return Err(AmountError::Malformed(shown));
    }
    if frac.len() > TKS_DECIMALS {
        return Err(AmountError::TooManyDecimals(shown));
    }
    let whole_units =
        if whole.is_empty() { 0 } else { whole.parse::<u128>().map_err(|_| AmountError::Overflow(shown.clone()))? };
    let mut frac_units: u128 = 0;
    for i in 0..TKS_DECIMALS {
        let digit = frac.as_bytes().get(i).map_or(0, |b| u128::from(b - b'0'));
        frac_units = frac_units * 10 + digit;
    }
    whole_units
        .checked_mul(BASE_UNITS_PER_TKS)
        .and_then(|w| w.checked_add(frac_units))
        .ok_or(AmountError::Overflow(shown))
}

/// Formats base units as TKS with the shortest exact decimal ("1.5", "0.000001", "3").
pub(crate) fn format_tks(base_units: u128) -> String {
    let whole = base_units / BASE_UNITS_PER_TKS;
    let frac = base_units % BASE_UNITS_PER_TKS;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:0width$}", width = TKS_DECIMALS);
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_tks_amounts_convert_exactly_to_base_units() {
        assert_eq!(parse_tks("1.5"), Ok(1_500_000_000));
        assert_eq!(parse_tks("0.000000001"), Ok(1));
        assert_eq!(parse_tks("42"), Ok(42_000_000_000));
        assert_eq!(parse_tks(".25"), Ok(250_000_000));
        assert_eq!(parse_tks("0"), Ok(0));
        assert_eq!(parse_tks("007.000000010"), Ok(7_000_000_010));
    }

    #[test]
    fn more_than_nine_decimals_is_refused() {
        assert!(matches!(parse_tks("0.0000000001"), Err(AmountError::TooManyDecimals(_))));
        assert!(matches!(parse_tks("1.1234567891"), Err(AmountError::TooManyDecimals(_))));
    }

    #[test]
    fn malformed_amounts_are_refused() {
        for bad in ["", ".", "1.", "-1", "+1", "1e9", "1,5", "1.2.3", " 1", "1 ", "0x10", "١"] {
            assert!(matches!(parse_tks(bad), Err(AmountError::Malformed(_))), "{bad:?} should be malformed");
        }
    }

    #[test]
    fn amounts_beyond_u128_base_units_overflow() {
        let max_whole = u128::MAX / BASE_UNITS_PER_TKS;
        assert_eq!(parse_tks(&max_whole.to_string()), Ok(max_whole * BASE_UNITS_PER_TKS));
        assert!(matches!(parse_tks(&(max_whole + 1).to_string()), Err(AmountError::Overflow(_))));
        assert!(matches!(parse_tks(&u128::MAX.to_string()), Err(AmountError::Overflow(_))));
        assert!(matches!(parse_tks(&"9".repeat(60)), Err(AmountError::Overflow(_))));
        let max_exact = format_tks(u128::MAX);
        assert_eq!(parse_tks(&max_exact), Ok(u128::MAX));
    }

    #[test]
    fn formatting_is_the_shortest_exact_decimal_and_round_trips() {
        assert_eq!(format_tks(1_500_000_000), "1.5");
        assert_eq!(format_tks(1), "0.000000001");
        assert_eq!(format_tks(1000), "0.000001");
        assert_eq!(format_tks(3 * BASE_UNITS_PER_TKS), "3");
        assert_eq!(format_tks(0), "0");
        for v in [0u128, 1, 999, 1_000_000_001, 10u128.pow(15), u128::MAX] {
            assert_eq!(parse_tks(&format_tks(v)), Ok(v));
        }
    }
}
