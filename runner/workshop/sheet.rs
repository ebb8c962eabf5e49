//! The printable seat sheet (`/seats?key=…`): one card per seat with its address (which holds the
//! seat's secret) as text and as a QR code, to cut out and hand to each participant.

use qrcode::QrCode;
use qrcode::render::svg;

use super::seats::Seat;

/// The sheet's style (inline; its CSP allows exactly it, by hash).
pub const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em}\
h1{font-size:1.3em}\
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(16em,1fr));gap:1em}\
.card{border:1px dashed #888;padding:.8em;break-inside:avoid}\
.card h2{margin:0 0 .4em;font-size:1.1em}\
.card svg{width:100%;height:auto;max-width:14em;display:block}\
.card code{font-size:.75em;word-break:break-all;display:block;margin-top:.4em}\
.note{color:#555;max-width:50em}\
@media print{.note{display:none}}";

/// The sheet's Content-Security-Policy: its style only (no script at all).
pub fn csp() -> &'static str {
    static CSP: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "default-src 'none'; style-src '{}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            crate::web::security::source_hash(STYLE)
        )
    });
    &CSP
}

/// The sheet for `seats` of the workshop at `workshop` (`host:port`), for `part`.
pub fn html(seats: &[Seat], workshop: &str, part: &str) -> String {
    let mut cards = String::new();
    for seat in seats {
        let url = seat.url(workshop);
        let qr = QrCode::new(url.as_bytes())
            .map(|code| {
                code.render::<svg::Color<'_>>()
                    .min_dimensions(180, 180)
                    .quiet_zone(true)
                    .build()
            })
            .unwrap_or_default();
        // The renderer's SVG starts with an XML declaration, which does not belong inline.
        let qr = qr
            .find("<svg")
            .map(|at| qr[at..].to_string())
            .unwrap_or_default();
        cards.push_str(&format!(
            "<div class=\"card\"><h2>{}</h2>{qr}<code>{}</code></div>\n",
            escape(&seat.name()),
            escape(&url)
        ));
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Seats — {part}</title>\
         <style>{STYLE}</style></head><body><h1>Seats for {part} ({count})</h1>\
         <p class=\"note\">Each card opens one seat's guide, with a terminal on this machine, from any \
         machine on the room's network. The address holds the seat's secret: give each card to one \
         participant. The first visit shows a certificate warning (the workshop made its own); the \
         instructor can read its fingerprint out from <code>lab-runner workshop status</code>.</p>\
         <div class=\"cards\">\n{cards}</div></body></html>",
        part = escape(part),
        count = seats.len()
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
