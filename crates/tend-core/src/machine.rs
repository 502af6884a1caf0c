//! placeholder, written next
pub struct Machine;
pub struct Action;
pub struct Event;
pub struct Exit;
pub struct Notice;
pub struct Phase;
