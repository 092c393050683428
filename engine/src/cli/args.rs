//! Parsers for command-line values such as `128` or `96,96,48`.

/// Parses a range of lengths in mm, "MIN,MAX" with 0 < MIN ≤ MAX.
pub fn parse_range_mm(text: &str) -> Result<(f64, f64), String> {
    let numbers: Vec<f64> = text
        .split(',')
        .map(|p| {
            p.trim()
                .parse::<f64>()
                .map_err(|_| format!("{p:?} is not a number"))
        })
        .collect::<Result<_, _>>()?;
    match numbers.as_slice() {
        [min, max] if *min > 0.0 && min <= max => Ok((*min, *max)),
        _ => Err(format!(
            "{text:?}: give MIN,MAX in mm with 0 < MIN ≤ MAX (e.g. 20,28)"
        )),
    }
}

/// Parses "N" (a cube) or "X,Y,Z" into a grid size.
pub fn parse_size(text: &str) -> Result<[usize; 3], String> {
    let parts: Vec<&str> = text.split([',', 'x']).map(str::trim).collect();
    let numbers: Vec<usize> = parts
        .iter()
        .map(|p| {
            p.parse::<usize>()
                .map_err(|_| format!("{p:?} is not a whole number"))
        })
        .collect::<Result<_, _>>()?;
    match numbers.as_slice() {
        [n] => Ok([*n; 3]),
        [x, y, z] => Ok([*x, *y, *z]),
        _ => Err(format!("{text:?}: give one size (128) or three (96,96,48)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("128"), Ok([128; 3]));
        assert_eq!(parse_size("96,80,40"), Ok([96, 80, 40]));
        assert!(parse_size("1,2").is_err());
        assert!(parse_size("a").is_err());
    }
}
