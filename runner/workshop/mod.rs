//! A workshop: many participants, one instructor who sees where each one is. The instructor's
//! `workshop up` starts an HTTPS server in the background ([`daemon`], [`server`], [`tls`]);
//! participants' `start PART --join URL` report their progress to it ([`join`], in the form of
//! [`protocol`]); the server keeps the room's [`board`] and shows it on a live dashboard. With
//! `--seats N` it also runs N warm [`seats`] on this machine for participants without Docker, each
//! reached through the server ([`passthrough`]), sized to fit the host ([`capacity`]), and listed
//! on a printable [`sheet`].

pub mod board;
pub mod capacity;
pub mod daemon;
pub mod join;
pub mod passthrough;
pub mod protocol;
pub mod seat_verify;
pub mod seats;
pub mod server;
pub mod sheet;
pub mod tls;
