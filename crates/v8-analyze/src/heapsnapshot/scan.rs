//! A forward-only reader over the bytes of a heap snapshot: just enough JSON to stream its big arrays
//! without holding the file in memory.
//!
//! The big arrays (`nodes`, `edges`) hold only non-negative integers, so [`ByteStream::scan_uint_array`]
//! reads them straight from a fixed buffer into whatever the caller builds, one number at a time.
//! Strings are read one by one; the caller decides which ones to keep. Everything else (the small
//! `snapshot` header, sections this crate does not use) is captured or skipped as a balanced JSON value.

use std::io::{self, Read};

use anyhow::{Context, Result, bail};

/// Small enough that what the kernel copies in is still in the L2 cache when the scanner reads it.
const BUFFER_SIZE: usize = 256 << 10;

/// Numbers in the snapshot stay below this; it keeps `acc * 10 + digit` far from overflow.
const MAX_NUMBER: u64 = 1 << 56;

/// The fast path reads at most this many digits of a number before handing over (so the number
/// stays far below `MAX_NUMBER`), and runs only while this many bytes are left in the buffer.
const FAST_DIGITS: usize = 15;
const FAST_WINDOW: usize = FAST_DIGITS + 2;
/// Numbers the fast path reads before handing them over.
const FAST_BATCH: usize = 256;

/// Most fields a node or edge record may have (V8 writes 7 and 3).
pub(crate) const MAX_FIELDS: usize = 32;

pub(crate) struct ByteStream<R> {
    reader: R,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    /// Bytes of the file before `buf[0]`.
    consumed: u64,
}

impl<R: Read> ByteStream<R> {
    pub fn new(reader: R) -> Self {
        ByteStream {
            reader,
            buf: vec![0; BUFFER_SIZE].into_boxed_slice(),
            pos: 0,
            len: 0,
            consumed: 0,
        }
    }

    /// A stream whose first byte is at `offset` in the file (error messages then give file
    /// offsets).
    pub fn starting_at(reader: R, offset: u64) -> Self {
        let mut stream = ByteStream::new(reader);
        stream.consumed = offset;
        stream
    }

    /// The bytes read from the reader but not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..self.len]
    }

    /// Drops what is buffered: the next byte comes from the reader and is at `offset` in the file
    /// (the caller has moved the reader there).
    pub fn jumped_to(&mut self, offset: u64) {
        self.pos = 0;
        self.len = 0;
        self.consumed = offset;
    }

    /// Byte offset in the file of the next unread byte (for error messages).
    pub fn offset(&self) -> u64 {
        self.consumed + self.pos as u64
    }

    /// Makes at least one unread byte available; `false` at the end of the file.
    fn fill(&mut self) -> Result<bool> {
        if self.pos < self.len {
            return Ok(true);
        }
        self.consumed += self.len as u64;
        self.pos = 0;
        self.len = 0;
        loop {
            match self.reader.read(&mut self.buf) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.len = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("reading at byte {}", self.offset()));
                }
            }
        }
    }

    /// The next byte that is not JSON whitespace, without consuming it; `None` at the end of the file.
    pub fn peek_token(&mut self) -> Result<Option<u8>> {
        loop {
            if !self.fill()? {
                return Ok(None);
            }
            let b = self.buf[self.pos];
            if is_whitespace(b) {
                self.pos += 1;
            } else {
                return Ok(Some(b));
            }
        }
    }

    /// Consumes the next non-whitespace byte, which must be `expected`; `context` says where we are.
    pub fn expect(&mut self, expected: u8, context: &str) -> Result<()> {
        match self.peek_token()? {
            Some(b) if b == expected => {
                self.pos += 1;
                Ok(())
            }
            Some(b) => bail!(
                "expected '{}' {context} at byte {}, found {}",
                expected as char,
                self.offset(),
                describe(b)
            ),
            None => bail!(
                "the file ends where '{}' was expected {context}: it is truncated",
                expected as char
            ),
        }
    }

    /// Consumes one byte that [`peek_token`](Self::peek_token) just returned.
    pub fn bump(&mut self) {
        self.pos += 1;
    }

    /// Reads a JSON string (the opening quote not yet consumed). With `keep`, its raw bytes (escapes
    /// left as written) go to `raw` and the result says whether it held any escape.
    pub fn read_string(&mut self, keep: bool, raw: &mut Vec<u8>) -> Result<bool> {
        self.expect(b'"', "(a string)")?;
        let start = self.offset();
        let mut escaped = false;
        let mut pending_escape = false;
        loop {
            if !self.fill()? {
                bail!("the file ends inside a string that starts at byte {start}: it is truncated");
            }
            let chunk = &self.buf[self.pos..self.len];
            let mut i = 0;
            if pending_escape {
                // The byte after a backslash never ends the string.
                i = 1;
                pending_escape = false;
            }
            while i < chunk.len() {
                // Straight to the next quote or backslash, eight bytes at a time.
                i += quote_or_backslash(&chunk[i..]);
                if i >= chunk.len() {
                    break;
                }
                match chunk[i] {
                    b'"' => {
                        if keep {
                            raw.extend_from_slice(&chunk[..i]);
                        }
                        self.pos += i + 1;
                        return Ok(escaped);
                    }
                    b'\\' => {
                        escaped = true;
                        if i + 1 < chunk.len() {
                            i += 2;
                        } else {
                            pending_escape = true;
                            i += 1;
                        }
                    }
                    _ => i += 1,
                }
            }
            if keep {
                raw.extend_from_slice(chunk);
            }
            self.pos = self.len;
        }
    }

    /// Skips one JSON value of any kind; with `capture`, appends its bytes there, up to `limit` bytes.
    pub fn skip_value(&mut self, mut capture: Option<&mut Vec<u8>>, limit: usize) -> Result<()> {
        let start = self.offset();
        let Some(first) = self.peek_token()? else {
            bail!("the file ends where a value was expected: it is truncated");
        };
        let nested = first == b'[' || first == b'{';
        if !nested && first != b'"' && !is_scalar_byte(first) {
            bail!(
                "expected a JSON value at byte {start}, found {}",
                describe(first)
            );
        }
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escape = false;
        let mut seen = 0usize;
        loop {
            if !self.fill()? {
                if !nested && !in_string {
                    return Ok(()); // a scalar that ends the file; the caller reports what is missing
                }
                bail!(
                    "the file ends inside the value that starts at byte {start}: it is truncated"
                );
            }
            let chunk = &self.buf[self.pos..self.len];
            let mut end = None;
            for (i, &b) in chunk.iter().enumerate() {
                if in_string {
                    if escape {
                        escape = false;
                    } else if b == b'\\' {
                        escape = true;
                    } else if b == b'"' {
                        in_string = false;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' if depth > 0 => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    _ if depth == 0 && !is_scalar_byte(b) => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let used = end.unwrap_or(chunk.len());
            if let Some(out) = capture.as_deref_mut() {
                seen += used;
                if seen > limit {
                    bail!("the value that starts at byte {start} is larger than {limit} bytes");
                }
                out.extend_from_slice(&chunk[..used]);
            }
            self.pos += used;
            if end.is_some() {
                return Ok(());
            }
        }
    }

    /// Reads a JSON array of non-negative integers (its `[` not yet consumed) made of records of
    /// `fields` numbers each (a node, an edge), handing each complete record to `on_record`. Returns
    /// the number of records and how many numbers were left over after the last whole record (the
    /// caller says what that means). `name` names the array in error messages.
    ///
    /// This is the hot loop of the whole analysis: one pass over the bytes, digits accumulated in a
    /// register, the record handed over once complete.
    pub fn scan_records(
        &mut self,
        name: &str,
        fields: usize,
        mut on_record: impl FnMut(&[u64]) -> Result<()>,
    ) -> Result<(u64, usize)> {
        #[derive(Clone, Copy, PartialEq, Eq)]
        enum State {
            /// Just after `[`.
            Open,
            /// After a comma: a number must come.
            ExpectNumber,
            /// Inside a number's digits.
            InNumber,
            /// After a number and some whitespace: a comma or `]` must come.
            AfterNumber,
        }
        if fields == 0 || fields > MAX_FIELDS {
            bail!("records of {fields} fields are not supported (1 to {MAX_FIELDS})");
        }
        self.expect(b'[', &format!("to open the \"{name}\" array"))?;
        let mut record = [0u64; MAX_FIELDS];
        let mut batch = [0u64; FAST_BATCH];
        let mut filled = 0usize;
        let mut records = 0u64;
        let mut state = State::Open;
        let mut acc: u64 = 0;
        // Hands a finished number to the record being built.
        macro_rules! emit {
            ($value:expr) => {{
                if let Some(slot) = record.get_mut(filled) {
                    *slot = $value;
                }
                filled += 1;
                if filled == fields {
                    filled = 0;
                    on_record(&record[..fields])?;
                    records += 1;
                }
            }};
        }
        loop {
            if !self.fill()? {
                bail!(
                    "the file ends inside the \"{name}\" array, after {} numbers: the snapshot \
                     is truncated",
                    records * fields as u64 + filled as u64
                );
            }
            let chunk = &self.buf[self.pos..self.len];
            let mut i = 0;
            while i < chunk.len() {
                // Fast path for the way V8 writes these arrays (`1,22,333\n,4444`): numbers each
                // followed by a comma (or a newline and a comma), parsed a batch at a time by a
                // small loop of its own. It stops before anything else (whitespace, `]`, a long
                // number, an error, the end of the buffer), which the state machine below handles.
                if state == State::ExpectNumber {
                    loop {
                        if filled == 0 {
                            let (used, count) = whole_records(fields, &chunk[i..], &mut on_record)?;
                            i += used;
                            records += count;
                        }
                        let (used, count) = fast_numbers(&chunk[i..], &mut batch);
                        i += used;
                        let mut numbers = &batch[..count];
                        // Finish the record the last batch left open, hand over the whole
                        // records, keep the rest for the next batch.
                        while filled != 0 {
                            let Some((&value, rest)) = numbers.split_first() else {
                                break;
                            };
                            emit!(value);
                            numbers = rest;
                        }
                        let mut whole = numbers.chunks_exact(fields);
                        for one in &mut whole {
                            on_record(one)?;
                            records += 1;
                        }
                        for &value in whole.remainder() {
                            emit!(value);
                        }
                        if count < batch.len() {
                            break;
                        }
                    }
                    if i >= chunk.len() {
                        break;
                    }
                }
                let b = chunk[i];
                let digit = b.wrapping_sub(b'0');
                if digit < 10 {
                    match state {
                        State::InNumber => {}
                        State::AfterNumber => {
                            return Err(self.unexpected(name, "expected ',' between numbers", i));
                        }
                        State::Open | State::ExpectNumber => {
                            state = State::InNumber;
                            acc = 0;
                        }
                    }
                    acc = acc * 10 + u64::from(digit);
                    i += 1;
                    // The rest of the digits, in a tight loop.
                    while i < chunk.len() {
                        let digit = chunk[i].wrapping_sub(b'0');
                        if digit >= 10 || acc >= MAX_NUMBER {
                            break;
                        }
                        acc = acc * 10 + u64::from(digit);
                        i += 1;
                    }
                    if acc >= MAX_NUMBER {
                        return Err(self.unexpected(name, "a number is too large", i));
                    }
                    continue;
                }
                let closing = match b {
                    b',' => false,
                    b']' => true,
                    b' ' | b'\n' | b'\r' | b'\t' => {
                        if state == State::InNumber {
                            state = State::AfterNumber;
                        }
                        i += 1;
                        continue;
                    }
                    other => {
                        return Err(self.unexpected(
                            name,
                            &format!(
                                "found {} where only non-negative integers belong",
                                describe(other)
                            ),
                            i,
                        ));
                    }
                };
                match state {
                    State::InNumber | State::AfterNumber => {
                        emit!(acc);
                        state = State::ExpectNumber;
                    }
                    State::Open if closing => {}
                    State::Open | State::ExpectNumber => {
                        let what = if closing {
                            "a ',' is followed by ']'"
                        } else {
                            "expected a number before ','"
                        };
                        return Err(self.unexpected(name, what, i));
                    }
                }
                if closing {
                    self.pos += i + 1;
                    return Ok((records, filled));
                }
                i += 1;
            }
            self.pos = self.len;
        }
    }

    #[cold]
    fn unexpected(&self, array: &str, what: &str, at: usize) -> anyhow::Error {
        anyhow::anyhow!(
            "{what} in the \"{array}\" array at byte {}",
            self.consumed + (self.pos + at) as u64
        )
    }
}

/// The fastest path of [`ByteStream::scan_records`], at the start of a record: reads whole records
/// the way [`fast_numbers`] reads numbers, handing each to `on_record`, for the record sizes V8
/// writes (3 numbers an edge; 7 a node in Node 20, 6 or 5 in older versions). Knowing the size at
/// compile time gives each field its own copy of the digit loop, so the branch predictor learns each
/// field's usual length (an edge's type has one digit, its target seven). Returns the bytes
/// consumed and the records read (none for other sizes).
fn whole_records(
    fields: usize,
    bytes: &[u8],
    on_record: &mut impl FnMut(&[u64]) -> Result<()>,
) -> Result<(usize, u64)> {
    match fields {
        3 => records_of::<3>(bytes, on_record),
        5 => records_of::<5>(bytes, on_record),
        6 => records_of::<6>(bytes, on_record),
        7 => records_of::<7>(bytes, on_record),
        _ => Ok((0, 0)),
    }
}

#[inline(always)]
fn records_of<const N: usize>(
    bytes: &[u8],
    on_record: &mut impl FnMut(&[u64]) -> Result<()>,
) -> Result<(usize, u64)> {
    let mut i = 0;
    let mut count = 0;
    'records: loop {
        let mut record = [0u64; N];
        let mut at = i;
        for slot in &mut record {
            let Some((value, used)) = number_and_separator(bytes, at) else {
                break 'records;
            };
            *slot = value;
            at += used;
        }
        on_record(&record)?;
        count += 1;
        i = at;
    }
    Ok((i, count))
}

/// A number at `bytes[at..]` followed by `,` or `\n,`, if a whole one certainly fits: its value and
/// the bytes it takes with its separator.
#[inline(always)]
fn number_and_separator(bytes: &[u8], at: usize) -> Option<(u64, usize)> {
    let window: &[u8; FAST_WINDOW] = bytes.get(at..at + FAST_WINDOW)?.try_into().ok()?;
    let mut value: u64 = 0;
    let mut digits = FAST_DIGITS;
    for (k, &b) in window[..FAST_DIGITS].iter().enumerate() {
        let digit = b.wrapping_sub(b'0');
        if digit >= 10 {
            digits = k;
            break;
        }
        value = value * 10 + u64::from(digit);
    }
    if digits == 0 {
        return None;
    }
    match window[digits] {
        b',' => Some((value, digits + 1)),
        b'\n' if window[digits + 1] == b',' => Some((value, digits + 2)),
        _ => None,
    }
}

/// The fast path of [`ByteStream::scan_records`]: reads numbers that are each followed by `,` or
/// `\n,` into `out`, while there is room in `out` and a whole number (with its separator) certainly
/// fits in what is left of `bytes`. Returns the bytes consumed and the numbers read; a number it is
/// not sure of is left unconsumed.
#[inline(never)]
fn fast_numbers(bytes: &[u8], out: &mut [u64; FAST_BATCH]) -> (usize, usize) {
    let mut i = 0;
    let mut count = 0;
    while count < FAST_BATCH {
        let Some((value, used)) = number_and_separator(bytes, i) else {
            break;
        };
        out[count] = value;
        count += 1;
        i += used;
    }
    (i, count)
}

/// The position of the first `"` or `\\` in `bytes` (`bytes.len()` if none): eight bytes at a
/// time, with the zero-byte test of Mycroft (a byte equal to the one looked for becomes zero).
#[inline(always)]
fn quote_or_backslash(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS;
    let mut words = bytes.chunks_exact(8);
    let mut offset = 0;
    for word in &mut words {
        let w = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
        let found =
            has_zero(w ^ (ONES * u64::from(b'"'))) | has_zero(w ^ (ONES * u64::from(b'\\')));
        if found != 0 {
            // The lowest flagged byte is a real match (borrows only run towards higher bytes).
            return offset + (found.trailing_zeros() / 8) as usize;
        }
        offset += 8;
    }
    offset
        + words
            .remainder()
            .iter()
            .position(|&b| b == b'"' || b == b'\\')
            .unwrap_or(words.remainder().len())
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// Bytes that can appear in a JSON number or in `true`, `false`, `null`.
fn is_scalar_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.')
}

/// `'x'` for printable ASCII, `byte 0x07` otherwise.
pub(crate) fn describe(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

/// Decodes the raw bytes of a JSON string body (between the quotes) that holds escapes. A lone UTF-16
/// surrogate (JavaScript strings may hold one) becomes U+FFFD rather than an error.
pub(crate) fn unescape(raw: &[u8]) -> Result<String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let Some(&kind) = raw.get(i + 1) else {
            bail!("a string ends with a lone backslash");
        };
        i += 2;
        let simple = match kind {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'u' => None,
            other => bail!("a string holds an unknown escape \\{}", other as char),
        };
        if let Some(byte) = simple {
            out.push(byte);
            continue;
        }
        let unit = hex4(raw, i)?;
        i += 4;
        let c = if (0xD800..0xDC00).contains(&unit) {
            // A high surrogate: pair it with a following low one if there is one.
            let low = if raw.get(i) == Some(&b'\\') && raw.get(i + 1) == Some(&b'u') {
                hex4(raw, i + 2)
                    .ok()
                    .filter(|u| (0xDC00..0xE000).contains(u))
            } else {
                None
            };
            match low {
                Some(low) => {
                    i += 6;
                    char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
                }
                None => None,
            }
        } else {
            char::from_u32(unit)
        };
        let mut utf8 = [0u8; 4];
        out.extend_from_slice(
            c.unwrap_or(char::REPLACEMENT_CHARACTER)
                .encode_utf8(&mut utf8)
                .as_bytes(),
        );
    }
    String::from_utf8(out).context("a string is not valid UTF-8")
}

fn hex4(raw: &[u8], at: usize) -> Result<u32> {
    let digits = raw
        .get(at..at + 4)
        .context("a \\u escape has fewer than 4 hex digits")?;
    let text = std::str::from_utf8(digits).context("a \\u escape is not hex")?;
    u32::from_str_radix(text, 16).context("a \\u escape is not hex")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out one byte per call, to exercise every buffer boundary.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), out.first_mut()) {
                (Some((&b, rest)), Some(slot)) => {
                    *slot = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    fn numbers(text: &str) -> Result<Vec<u64>> {
        let mut whole = Vec::new();
        ByteStream::new(text.as_bytes()).scan_records("test", 1, |n| {
            whole.push(n[0]);
            Ok(())
        })?;
        let mut trickled = Vec::new();
        ByteStream::new(Trickle(text.as_bytes())).scan_records("test", 1, |n| {
            trickled.push(n[0]);
            Ok(())
        })?;
        assert_eq!(
            whole, trickled,
            "same numbers whatever the buffer boundaries"
        );
        Ok(whole)
    }

    #[test]
    fn scans_integer_arrays_across_buffer_boundaries() {
        assert_eq!(
            numbers("[1,22,333\n,4444 , 0]").unwrap(),
            vec![1, 22, 333, 4444, 0]
        );
        assert_eq!(numbers(" [ ]").unwrap(), Vec::<u64>::new());
        assert_eq!(
            numbers("[18446744073709]").unwrap(),
            vec![18_446_744_073_709]
        );
    }

    #[test]
    fn rejects_what_is_not_a_list_of_integers() {
        for (text, message) in [
            ("[1,,2]", "expected a number before ','"),
            ("[1 2]", "expected ',' between numbers"),
            (
                "[1,-2]",
                "found '-' where only non-negative integers belong",
            ),
            ("[1.5]", "found '.'"),
            ("[1,]", "a ',' is followed by ']'"),
            (
                "[1,2",
                "the file ends inside the \"test\" array, after 1 numbers",
            ),
            ("[99999999999999999999]", "too large"),
            ("{}", "expected '['"),
        ] {
            let err = numbers(text).unwrap_err();
            assert!(
                format!("{err:#}").contains(message),
                "{text}: {err:#} should say {message}"
            );
        }
    }

    #[test]
    fn fast_path_and_state_machine_agree() {
        // Long enough for the fast path, with every separator style and number length mixed in.
        let mut text = String::from("[");
        let mut expected = Vec::new();
        for i in 0..5_000u64 {
            let n = i * i * 7_919 % 1_000_000_007 * if i % 97 == 0 { 10_000_000 } else { 1 };
            if i > 0 {
                text.push_str(match i % 5 {
                    0 => "\n,",
                    1 => " , ",
                    2 => ",\n",
                    _ => ",",
                });
            }
            text.push_str(&n.to_string());
            expected.push(n);
        }
        text.push_str(" ]");
        assert_eq!(numbers(&text).unwrap(), expected);
        let broken = text.replacen(",", ",,", 1).replace("]", ",]");
        assert!(numbers(&broken).is_err());
        let truncated = &text[..text.len() / 2];
        assert!(format!("{:#}", numbers(truncated).unwrap_err()).contains("the file ends inside"));
    }

    /// Records of `fields` numbers read from `text`, whole and one byte at a time (the byte-at-a-time
    /// reader never gives the fast paths a window to work in, so both paths are compared).
    fn records(text: &str, fields: usize) -> Result<(Vec<Vec<u64>>, usize)> {
        let read = |reader: &mut dyn Read| -> Result<(Vec<Vec<u64>>, usize)> {
            let mut out = Vec::new();
            let (_, leftover) = ByteStream::new(reader).scan_records("test", fields, |r| {
                out.push(r.to_vec());
                Ok(())
            })?;
            Ok((out, leftover))
        };
        let whole = read(&mut text.as_bytes());
        let trickled = read(&mut Trickle(text.as_bytes()));
        match (&whole, &trickled) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "same records whatever the buffer boundaries"),
            (Err(a), Err(b)) => assert_eq!(format!("{a:#}"), format!("{b:#}")),
            _ => panic!("one reader failed and the other did not: {whole:?} / {trickled:?}"),
        }
        whole
    }

    #[test]
    fn whole_records_of_every_size_v8_writes_agree_with_the_state_machine() {
        for fields in [3, 5, 6, 7, 4] {
            let mut text = String::from("[");
            let mut expected = Vec::new();
            for r in 0..2_000u64 {
                let record: Vec<u64> = (0..fields as u64)
                    .map(|f| match (r + f) % 11 {
                        0 => 0,
                        1 => 123_456_789_012, // longer than eight digits
                        _ => (r * 7_919 + f * 104_729) % 10u64.pow((f % 8 + 1) as u32),
                    })
                    .collect();
                if r > 0 {
                    // V8's "\n," between records, and now and then what other writers do.
                    text.push_str(match r % 13 {
                        5 => ",\n",
                        9 => " , ",
                        _ => "\n,",
                    });
                }
                let numbers: Vec<String> = record.iter().map(u64::to_string).collect();
                text.push_str(&numbers.join(","));
                expected.push(record);
            }
            let complete = format!("{text}]");
            assert_eq!(records(&complete, fields).unwrap(), (expected.clone(), 0));
            // One number more: a record left incomplete is counted, not handed over.
            let extra = format!("{text},42]");
            assert_eq!(records(&extra, fields).unwrap(), (expected, 1));
            // Damage in the middle of a record is found on both paths, at the same byte.
            let middle = text.len() / 2;
            let comma = middle + text[middle..].find(',').unwrap();
            for damage in [",,", ",-", ",x", ",1.5", "\n", " "] {
                let broken = format!("{}{damage}{}]", &text[..comma], &text[comma + 1..]);
                assert!(
                    records(&broken, fields).is_err(),
                    "{damage} with {fields} fields"
                );
            }
        }
    }

    #[test]
    fn hands_over_whole_records_and_counts_what_is_left() {
        let mut records = Vec::new();
        let (count, leftover) = ByteStream::new(Trickle(b"[1,2,3,4,5,6,7]"))
            .scan_records("test", 3, |r| {
                records.push(r.to_vec());
                Ok(())
            })
            .unwrap();
        assert_eq!((count, leftover), (2, 1));
        assert_eq!(records, [vec![1, 2, 3], vec![4, 5, 6]]);
    }

    #[test]
    fn reads_and_skips_strings_and_values() {
        let text = r#" "a\"b\\" ["x]", {"y": [1, 2]}] 42 , "tail" "#;
        let mut stream = ByteStream::new(Trickle(text.as_bytes()));
        let mut raw = Vec::new();
        assert!(stream.read_string(true, &mut raw).unwrap());
        assert_eq!(unescape(&raw).unwrap(), "a\"b\\");
        let mut captured = Vec::new();
        stream.skip_value(Some(&mut captured), 1000).unwrap();
        assert_eq!(captured, br#"["x]", {"y": [1, 2]}]"#);
        stream.skip_value(None, 0).unwrap();
        stream.expect(b',', "after 42").unwrap();
        raw.clear();
        assert!(!stream.read_string(true, &mut raw).unwrap());
        assert_eq!(raw, b"tail");
        assert_eq!(stream.peek_token().unwrap(), None);
    }

    #[test]
    fn finds_quotes_and_backslashes_at_every_position() {
        for len in 0..40 {
            for at in 0..=len {
                for special in [b'"', b'\\'] {
                    let mut bytes = vec![b'a'; len];
                    // Bytes that differ from the special ones by one bit, and non-ASCII, around it.
                    for (i, b) in bytes.iter_mut().enumerate() {
                        *b = [b'a', b'#', b'!', 0xc3, 0xa9, b'\x5d', 0x22 ^ 0x80][i % 7];
                    }
                    if at < len {
                        bytes[at] = special;
                    }
                    let want = bytes
                        .iter()
                        .position(|&b| b == b'"' || b == b'\\')
                        .unwrap_or(len);
                    assert_eq!(quote_or_backslash(&bytes), want, "{bytes:?}");
                }
            }
        }
    }

    #[test]
    fn unescapes_json_including_lone_surrogates() {
        assert_eq!(
            unescape(br"a\nb\u00e9\ud83d\ude00").unwrap(),
            "a\nb\u{e9}\u{1F600}"
        );
        assert_eq!(unescape(br"x\ud800y").unwrap(), "x\u{FFFD}y");
        assert!(unescape(br"\q").is_err());
    }
}
