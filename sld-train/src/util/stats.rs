//! Order statistics shared by every report (`sld eval`, `sld simulate`,
//! depth fitting), so all of them mean the same thing by "median".

/// The median of `v`: the middle value for an odd count, the mean of the
/// two middle values for an even one; `None` when `v` is empty. NaN sorts
/// above every number (`f64::total_cmp`). Reorders `v` (linear time).
pub fn median(v: &mut [f64]) -> Option<f64> {
    let n = v.len();
    if n == 0 {
        return None;
    }
    let (lower, mid, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    let mid = *mid;
    if n % 2 == 1 {
        return Some(mid);
    }
    // The largest of the lower half is the other middle value.
    let below = lower.iter().copied().max_by(f64::total_cmp).unwrap_or(mid);
    Some(0.5 * (below + mid))
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn odd_even_empty_and_unsorted() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0]), Some(3.0));
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        // A sorted copy agrees on random data of both parities.
        let mut rng = sld_core::rng::SplitMix64::new(3);
        for n in 1..40 {
            let v: Vec<f64> = (0..n).map(|_| rng.uniform(-5.0, 5.0)).collect();
            let mut s = v.clone();
            s.sort_by(f64::total_cmp);
            let want = if n % 2 == 1 {
                s[n / 2]
            } else {
                0.5 * (s[n / 2 - 1] + s[n / 2])
            };
            assert_eq!(median(&mut v.clone()), Some(want));
        }
    }
}
