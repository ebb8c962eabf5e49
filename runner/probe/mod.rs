pub mod inspector;
