//! The `barge-mapper` command line.

/// A protocol this mapper binary speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    Modbus,
    Virtual,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Modbus => "modbus",
            Protocol::Virtual => "virtual",
        }
    }
}

/// barge's device mapper: reads devices' properties into their twins over the edge's MQTT
/// EventBus and writes desired values to the devices.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "barge-mapper", version)]
pub struct Config {
    /// The edge's MQTT broker.
    #[arg(
        long,
        env = "BARGE_MAPPER_MQTT",
        default_value = "tcp://127.0.0.1:1883"
    )]
    pub mqtt: String,
    /// The edge node whose devices this mapper serves.
    #[arg(long, env = "BARGE_MAPPER_NODE")]
    pub node: String,
    /// Serve devices of this protocol (repeat for several; default: all).
    #[arg(long = "protocol", value_enum)]
    pub protocols: Vec<Protocol>,
    /// MQTT client id (default `barge-mapper-NODE-PROTOCOLS`; the session is persistent).
    #[arg(long)]
    pub client_id: Option<String>,
}

impl Config {
    /// The protocols served (all when none was given).
    pub fn protocols(&self) -> Vec<Protocol> {
        if self.protocols.is_empty() {
            vec![Protocol::Modbus, Protocol::Virtual]
        } else {
            self.protocols.clone()
        }
    }

    pub fn client_id(&self) -> String {
        self.client_id.clone().unwrap_or_else(|| {
            let p: Vec<&str> = self.protocols().iter().map(|p| p.name()).collect();
            format!("barge-mapper-{}-{}", self.node, p.join("-"))
        })
    }
}
