//! The IP_LOCAL_PORT_RANGE cases.
