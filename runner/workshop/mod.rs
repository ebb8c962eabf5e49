//! A workshop: many participants, one instructor who sees where each one is. The instructor's
//! `workshop up` starts an HTTPS server in the background ([`daemon`], [`server`], [`tls`]);
//! participants' `start PART --join URL` report their progress to it ([`join`], in the form of
//! [`protocol`]); the server keeps the room's [`board`] and shows it on a live dashboard.

pub mod board;
pub mod daemon;
pub mod join;
pub mod protocol;
pub mod server;
pub mod tls;
