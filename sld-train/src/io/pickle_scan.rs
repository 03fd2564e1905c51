//! A pickle opcode walker (protocols 0–5): visits each opcode with its
//! raw argument bytes, checking that every argument lies inside the input,
//! without building any object. The third-party pickle readers we use
//! trust declared lengths (Candle's VM allocates them) and clone shared
//! objects (serde-pickle; a few hundred bytes of nested memo references
//! expand exponentially). Both were found by fuzzing; callers walk the
//! bytes first and refuse what those readers cannot handle safely.

use anyhow::{bail, Context, Result};

/// Calls `visit(opcode, argument)` for each opcode of the pickle starting
/// at `start`, up to and including STOP; returns the offset after STOP.
pub fn walk(bytes: &[u8], start: usize, mut visit: impl FnMut(u8, &[u8]) -> Result<()>) -> Result<usize> {
    let mut pos = start;
    let take = |pos: &mut usize, n: usize| -> Result<usize> {
        let end = pos.checked_add(n).filter(|&e| e <= bytes.len());
        let end = end.context("truncated pickle (an argument runs past the end of the file)")?;
        let at = *pos;
        *pos = end;
        Ok(at)
    };
    let le = |b: &[u8]| b.iter().rev().fold(0u64, |a, &x| (a << 8) | x as u64);
    loop {
        let at_op = take(&mut pos, 1)?;
        let op = bytes[at_op];
        let arg_start = pos;
        match op {
            b'.' => {
                visit(op, &[])?;
                return Ok(pos);
            }
            // No argument.
            b'('
            | b'0'
            | b'1'
            | b'2'
            | b'N'
            | b')'
            | b']'
            | b'}'
            | b'a'
            | b'e'
            | b's'
            | b'u'
            | b't'
            | b'l'
            | b'd'
            | b'R'
            | b'b'
            | b'Q'
            | b'o'
            | 0x85..=0x89
            | 0x81
            | 0x8f..=0x94
            | 0x97
            | 0x98 => {}
            b'K' | b'q' | b'h' | 0x80 | 0x82 => {
                take(&mut pos, 1)?;
            }
            b'M' | 0x83 => {
                take(&mut pos, 2)?;
            }
            b'J' | b'r' | b'j' | 0x84 => {
                take(&mut pos, 4)?;
            }
            b'G' | 0x95 => {
                take(&mut pos, 8)?;
            }
            // Newline-terminated text (GLOBAL and INST have two lines).
            b'c' | b'i' | b'I' | b'L' | b'F' | b'S' | b'V' | b'P' | b'p' | b'g' => {
                let lines = if op == b'c' || op == b'i' { 2 } else { 1 };
                for _ in 0..lines {
                    let nl = bytes[pos..]
                        .iter()
                        .position(|&c| c == b'\n')
                        .context("truncated pickle (an unterminated text argument)")?;
                    pos += nl + 1;
                }
            }
            // Length-prefixed data: 1, 4 or 8 length bytes.
            b'U' | b'C' | 0x8a | 0x8c => {
                let n = bytes[take(&mut pos, 1)?] as usize;
                take(&mut pos, n)?;
            }
            b'T' | b'X' | b'B' | 0x8b => {
                let at = take(&mut pos, 4)?;
                let n = le(&bytes[at..at + 4]) as usize;
                take(&mut pos, n)?;
            }
            0x8d | 0x8e | 0x96 => {
                let at = take(&mut pos, 8)?;
                let n = usize::try_from(le(&bytes[at..at + 8])).unwrap_or(usize::MAX);
                take(&mut pos, n)?;
            }
            other => bail!("unsupported pickle opcode 0x{other:02x} at byte {at_op}"),
        }
        visit(op, &bytes[arg_start..pos])?;
    }
}

/// What a plain-data pickle may hold, for [`check_plain_data`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Mark,
    Scalar,
    Container,
}

/// Checks that `bytes` is one pickle of plain data (dicts, lists, tuples,
/// strings, numbers, booleans, None) in which no container is referenced
/// twice (a memo GET of a list or dict), so that reading it takes time and
/// memory linear in its size. Shared strings and numbers are fine.
pub fn check_plain_data(bytes: &[u8]) -> Result<()> {
    let mut stack: Vec<Kind> = Vec::new();
    let mut memo: std::collections::HashMap<u64, Kind> = std::collections::HashMap::new();
    let le = |b: &[u8]| b.iter().rev().fold(0u64, |a, &x| (a << 8) | x as u64);
    let text_index = |arg: &[u8]| -> Result<u64> {
        std::str::from_utf8(arg)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .context("bad memo index")
    };
    walk(bytes, 0, |op, arg| {
        let pop_to_mark = |stack: &mut Vec<Kind>| -> Result<()> {
            let m = stack
                .iter()
                .rposition(|k| *k == Kind::Mark)
                .context("pickle has no MARK here")?;
            stack.truncate(m);
            Ok(())
        };
        let pop = |stack: &mut Vec<Kind>, n: usize| -> Result<()> {
            anyhow::ensure!(stack.len() >= n, "pickle stack underflow");
            stack.truncate(stack.len() - n);
            Ok(())
        };
        match op {
            0x80 | 0x95 | b'.' => {}
            b'(' => stack.push(Kind::Mark),
            b'}' | b']' | b')' | 0x8f => stack.push(Kind::Container),
            b'N' | 0x88 | 0x89 | b'K' | b'M' | b'J' | 0x8a | 0x8b | b'G' | b'I' | b'L' | b'F' | b'S'
            | b'V' | b'U' | b'T' | b'X' | 0x8c | 0x8d | b'C' | b'B' | 0x8e => stack.push(Kind::Scalar),
            b'a' => pop(&mut stack, 1)?,
            b's' => pop(&mut stack, 2)?,
            b'e' | b'u' | 0x90 => pop_to_mark(&mut stack)?,
            b't' | b'l' | b'd' | 0x91 => {
                pop_to_mark(&mut stack)?;
                stack.push(Kind::Container);
            }
            0x85..=0x87 => {
                pop(&mut stack, (op - 0x84) as usize)?;
                stack.push(Kind::Container);
            }
            b'q' | b'r' | b'p' | 0x94 => {
                let idx = match op {
                    b'p' => text_index(arg)?,
                    0x94 => memo.len() as u64,
                    _ => le(arg),
                };
                let top = *stack.last().context("memo of an empty stack")?;
                memo.insert(idx, top);
            }
            b'h' | b'j' | b'g' => {
                let idx = if op == b'g' { text_index(arg)? } else { le(arg) };
                match memo.get(&idx) {
                    Some(Kind::Scalar) => stack.push(Kind::Scalar),
                    Some(_) => bail!("the pickle references one container twice (not plain data)"),
                    None => bail!("the pickle reads memo slot {idx}, which was never written"),
                }
            }
            b'0' => pop(&mut stack, 1)?,
            b'1' => pop_to_mark(&mut stack)?,
            other => bail!("pickle opcode 0x{other:02x} builds objects other than plain data"),
        }
        Ok(())
    })?;
    Ok(())
}
