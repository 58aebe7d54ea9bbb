//! The statements of a crm `configure` text, one per object, close to the
//! syntax: what the parser produces, what the writer prints, and what
//! [`super::lower`] turns into the model (resolving references, ordering
//! resources and generating ids as crmsh does).

use crate::model::{BoolOp, CmpOp, OrderKind, Role, RuleScore, ValueType};
use crate::score::Score;

/// A position in the input: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

/// A name as written, with where it was written (for errors).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ident {
    pub text: String,
    pub pos: Pos,
}

impl Ident {
    pub fn new(text: impl Into<String>) -> Ident {
        Ident {
            text: text.into(),
            pos: Pos::default(),
        }
    }
}

/// One attribute list (`params`, `meta`, `utilization`, `attributes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NvSet {
    /// `<score>:` before the pairs; sets with a higher score win.
    pub score: Score,
    /// A set with `rule`s applies conditionally: like the CIB reader, the
    /// model leaves it out.
    pub has_rules: bool,
    pub pairs: Vec<(String, String)>,
}

impl NvSet {
    pub fn of(pairs: Vec<(String, String)>) -> NvSet {
        NvSet {
            score: 0,
            has_rules: false,
            pairs,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    Node(NodeStmt),
    Primitive(PrimitiveStmt),
    Group(GroupStmt),
    Clone(CloneStmt),
    Location(LocationStmt),
    Colocation(ColocationStmt),
    Order(OrderStmt),
    Nvset(NvsetStmt),
    Fencing(FencingStmt),
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodeStmt {
    /// `$id=` (else the id is the name).
    pub id: Option<String>,
    pub name: Ident,
    /// `:remote` nodes are left out, as the CIB reader does.
    pub remote: bool,
    pub attributes: Vec<NvSet>,
    pub utilization: Vec<NvSet>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PrimitiveStmt {
    pub id: Ident,
    pub class: String,
    pub provider: Option<String>,
    pub agent: String,
    pub params: Vec<NvSet>,
    pub meta: Vec<NvSet>,
    pub utilization: Vec<NvSet>,
    /// `operations $id=...`: the prefix of generated op ids.
    pub ops_id: Option<String>,
    pub ops: Vec<OpStmt>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OpStmt {
    pub name: String,
    /// `id=...` among the op's attributes.
    pub id: Option<String>,
    /// `interval=...` as written (crmsh uses it in the generated id).
    pub interval: Option<Ident>,
    /// Every other attribute, in order (the first of a name wins).
    pub attrs: Vec<(String, String)>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupStmt {
    pub id: Ident,
    pub members: Vec<Ident>,
    pub meta: Vec<NvSet>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CloneStmt {
    pub id: Ident,
    pub child: Ident,
    /// Written as `ms`/`master` (promotable; crmsh places these before clones).
    pub ms: bool,
    pub meta: Vec<NvSet>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LocationStmt {
    pub id: Ident,
    /// A resource id, or with `pattern` a regular expression (`/re/`).
    pub rsc: Ident,
    pub pattern: bool,
    pub role: Option<Role>,
    pub discovery: Option<String>,
    pub target: LocTarget,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LocTarget {
    Node { score: Score, node: String },
    Rules(Vec<RuleStmt>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleStmt {
    pub id: Option<Ident>,
    pub role: Option<Role>,
    pub score: RuleScore,
    pub bool_op: BoolOp,
    pub exprs: Vec<ExprStmt>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprStmt {
    Attr {
        attribute: String,
        op: CmpOp,
        value: Option<String>,
        value_type: Option<ValueType>,
        value_source: Option<String>,
    },
    Date {
        operation: String,
        start: Option<String>,
        end: Option<String>,
        duration: Vec<(String, String)>,
        date_spec: Vec<(String, String)>,
    },
}

/// A resource set in a colocation or order.
#[derive(Debug, Clone, PartialEq)]
pub struct SetStmt {
    pub resources: Vec<Ident>,
    pub sequential: Option<bool>,
    pub require_all: Option<bool>,
    pub role: Option<Role>,
    pub action: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColocationStmt {
    pub id: Ident,
    pub score: Score,
    pub node_attribute: Option<String>,
    pub influence: Option<bool>,
    pub form: ColForm,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ColForm {
    Pair {
        rsc: Ident,
        rsc_role: Option<Role>,
        with_rsc: Ident,
        with_rsc_role: Option<Role>,
    },
    Sets(Vec<SetStmt>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderStmt {
    pub id: Ident,
    pub kind: Option<OrderKind>,
    pub symmetrical: Option<bool>,
    pub form: OrdForm,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OrdForm {
    Pair {
        first: Ident,
        first_action: Option<String>,
        then: Ident,
        then_action: Option<String>,
    },
    Sets(Vec<SetStmt>),
}

/// Which section a `property`/`rsc_defaults`/`op_defaults` line fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NvsetKind {
    Property,
    RscDefaults,
    OpDefaults,
}

impl NvsetKind {
    pub fn keyword(self) -> &'static str {
        match self {
            NvsetKind::Property => "property",
            NvsetKind::RscDefaults => "rsc_defaults",
            NvsetKind::OpDefaults => "op_defaults",
        }
    }
    /// The set id crmsh uses when none is given.
    pub fn default_set_id(self) -> &'static str {
        match self {
            NvsetKind::Property => "cib-bootstrap-options",
            NvsetKind::RscDefaults => "rsc-options",
            NvsetKind::OpDefaults => "op-options",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NvsetStmt {
    pub kind: NvsetKind,
    pub set_id: Option<String>,
    pub has_rules: bool,
    pub pairs: Vec<(String, String)>,
}

/// `fencing_topology`: levels in order; a level without a target (only in
/// the form that names no node at all) applies to every node.
#[derive(Debug, Clone, PartialEq)]
pub struct FencingStmt {
    pub levels: Vec<(Option<String>, Vec<String>)>,
}
