"""Front end: SQL text -> one resolved, qualified SELECT tree (no data read).

The query is parsed by SQLGlot (dialect ``duckdb``), checked against a whitelist of node
types (anything not listed, from table functions to window frames, is refused), and every
table and column is resolved *exactly* against the catalogue the requester may see. A name
that differs in case, quoting or by a homoglyph is an unknown name, never a route around a
rule. The resolved tree names every table by its dataset and every column as
``"alias"."column"`` with quoted identifiers, so the engine sees exactly what was checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import sqlglot
from sqlglot import Token, TokenType, exp
from sqlglot.errors import ParseError, TokenError

from collabzone.errors import InvalidInputError
from collabzone.model import Column, Dataset

ZONE_SCHEMA = "zone"
"""The one schema every shared dataset is also in (``zone.dataset``)."""
_TOP = re.compile(r"\s*SELECT\s+(DISTINCT\s+)?TOP\s*\(?\s*\d", re.IGNORECASE)
MAX_SQL_LENGTH = 20_000
MAX_NESTING = 24
"""Deepest nesting of parentheses and prefix operators (NOT, unary minus) in one query:
the parser recurses once per level, so deeper input would exhaust Python's stack."""
MAX_TREE_DEPTH = 64
"""Deepest parsed tree: every later pass (shape, rewrite, SQL generation) walks it
recursively. A chain of n AND / OR terms is n levels deep: long value lists go in IN (...)."""
MAX_TREE_NODES = 5_000
"""Most nodes in one parsed query."""
_PREFIX_TOKENS = frozenset({TokenType.NOT, TokenType.DASH, TokenType.PLUS, TokenType.TILDE})

_ALLOWED_NODES: frozenset[type[exp.Expression]] = frozenset(
    {
        exp.Select, exp.From, exp.Join, exp.Table, exp.TableAlias, exp.Identifier,
        exp.Column, exp.Where, exp.Group, exp.Having, exp.Order, exp.Ordered, exp.Limit,
        exp.Literal, exp.Boolean, exp.Null, exp.And, exp.Or, exp.Not, exp.Paren,
        exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In, exp.Between, exp.Is,
        exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.Distinct, exp.Alias, exp.Star,
        exp.Neg, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Placeholder,
    }
)  # fmt: skip
_ALLOWED_NODES |= frozenset(
    {
        exp.Pow, exp.Round, exp.Abs, exp.Sqrt, exp.Ln, exp.Log, exp.Exp, exp.Floor, exp.Ceil,
        exp.Greatest, exp.Least, exp.Sign,
    }
)  # fmt: skip
"""Functions of aggregates: computed only on released DP values (``_postprocess``)."""
_ALLOWED_NODES |= frozenset(
    {
        exp.Variance, exp.VariancePop, exp.Stddev, exp.StddevSamp, exp.StddevPop, exp.Median,
        exp.Quantile, exp.PercentileCont,
    }
)  # fmt: skip
"""Aggregates answered in dp mode only (``_shape.DP_ONLY``; MIN/MAX above as well)."""
_ALLOWED_NODES |= frozenset({exp.Case, exp.If, exp.WidthBucket})
"""Public bins: accepted only as GROUP BY items (``_bins``), refused anywhere else."""

_FAMILY_HINTS: Mapping[type[exp.Expression], str] = {
    exp.Subquery: "subqueries",
    exp.With: "WITH (common table expressions)",
    exp.CTE: "WITH (common table expressions)",
    exp.Union: "UNION",
    exp.Intersect: "INTERSECT",
    exp.Except: "EXCEPT",
    exp.Window: "window functions",
    exp.Case: "CASE expressions",
    exp.If: "IF expressions",
    exp.Cast: "casts",
    exp.TryCast: "casts",
    exp.Anonymous: "user or engine functions",
}


_SELECT_PARTS = frozenset(
    {"expressions", "from_", "joins", "where", "group", "having", "order", "limit"}
)
_JOIN_PARTS = frozenset({"this", "on", "side", "kind"})


class QueryRejected(InvalidInputError):
    """The SQL is outside what governed SQL accepts; ``reason`` is a stable code.

    Codes: ``SYNTAX``, ``TOO_COMPLEX``, ``NOT_A_SELECT``, ``CONSTRUCT_NOT_ALLOWED``,
    ``UNKNOWN_TABLE``, ``UNKNOWN_COLUMN``, ``AMBIGUOUS_COLUMN``, ``AMBIGUOUS_NAME``, ``BAD_SHAPE``,
    ``BAD_PARAMETER``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class ColumnRef:
    """A resolved column: which table alias, which dataset, which catalogue column."""

    alias: str
    dataset: str
    column: Column

    @property
    def key(self) -> tuple[str, str]:
        return (self.dataset, self.column.name)

    def __hash__(self) -> int:
        return hash((self.alias, self.dataset, self.column.name))


@dataclass
class ResolvedQuery:
    """A parsed, whitelisted, exactly-resolved SELECT and what it references."""

    tree: exp.Select
    tables: dict[str, str]
    """Table alias -> dataset name, in FROM/JOIN order."""
    refs: dict[int, ColumnRef] = field(default_factory=dict)
    """id() of each exp.Column node in ``tree`` -> its resolution."""

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.tables.values()))

    def ref(self, node: exp.Column) -> ColumnRef:
        return self.refs[id(node)]

    def columns_by_dataset(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, dict[str, None]] = {d: {} for d in self.datasets}
        for ref in self.refs.values():
            out[ref.dataset][ref.column.name] = None
        return {d: tuple(cols) for d, cols in out.items()}


def _distinct_as_group_by(tree: exp.Expression) -> None:
    """``SELECT DISTINCT a, b`` is ``SELECT a, b ... GROUP BY a, b`` (one meaning, one
    path: in dp mode its groups are released through private partition selection)."""
    distinct = tree.args.get("distinct") if isinstance(tree, exp.Select) else None
    if not isinstance(distinct, exp.Distinct) or distinct.args.get("on") is not None:
        return
    if tree.args.get("group") is not None:
        return
    columns = [item.this if isinstance(item, exp.Alias) else item for item in tree.expressions]
    if not columns or not all(isinstance(c, exp.Column) for c in columns):
        return
    tree.set("distinct", None)
    tree.set("group", exp.Group(expressions=[c.copy() for c in columns]))


def parse_select(sql: str) -> exp.Select:
    """Parse ``sql`` into exactly one SELECT made only of whitelisted nodes."""
    if not isinstance(sql, str) or not sql.strip():
        raise QueryRejected("SYNTAX", "the query is empty; send one SELECT statement")
    if len(sql) > MAX_SQL_LENGTH:
        raise QueryRejected("SYNTAX", f"the query is longer than {MAX_SQL_LENGTH} characters")
    if _TOP.match(sql):
        raise QueryRejected(
            "SYNTAX", "TOP n is T-SQL; write LIMIT n at the end of the query instead"
        )
    dialect = sqlglot.Dialect.get_or_raise("duckdb")
    try:
        tokens = dialect.tokenize(sql)
        _check_nesting(tokens)
        statements = [s for s in dialect.parser().parse(tokens, sql) if s is not None]
    except ParseError as error:
        where = error.errors[0] if error.errors else {}
        raise QueryRejected(
            "SYNTAX",
            f"the SQL does not parse (line {where.get('line', '?')}, column "
            f"{where.get('col', '?')}); send one plain SELECT",
        ) from None
    except TokenError:
        raise QueryRejected("SYNTAX", "the SQL does not tokenise; check quotes") from None
    except RecursionError:  # a nesting the token check did not foresee: refuse, never crash
        raise QueryRejected("TOO_COMPLEX", _TOO_DEEP) from None
    if len(statements) != 1:
        raise QueryRejected("NOT_A_SELECT", "send exactly one statement, with no ';' chaining")
    tree = statements[0]
    _check_size(tree)
    if not isinstance(tree, exp.Select):
        raise QueryRejected(
            "NOT_A_SELECT",
            f"only a single SELECT is allowed, got {type(tree).__name__.upper()}",
        )
    _distinct_as_group_by(tree)
    for call in list(tree.find_all(exp.Anonymous)):
        # SmartNoise / SQL Server's VAR(x) is DuckDB's VARIANCE(x) (the sample variance)
        if str(call.this).upper() == "VAR" and len(call.expressions) == 1:
            call.replace(exp.Variance(this=call.expressions[0]))
    for node in tree.walk():
        if type(node) not in _ALLOWED_NODES:
            family = next(
                (hint for cls, hint in _FAMILY_HINTS.items() if isinstance(node, cls)),
                type(node).__name__,
            )
            raise QueryRejected(
                "CONSTRUCT_NOT_ALLOWED",
                f"{family} are not allowed in governed SQL; use one flat SELECT over the "
                "shared datasets with plain columns, aggregates and simple conditions",
            )
        if isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count):
            raise QueryRejected(
                "CONSTRUCT_NOT_ALLOWED", "SELECT * is not allowed; name the columns you need"
            )
    for select in tree.find_all(exp.Select):
        for key, value in select.args.items():
            if value and key not in _SELECT_PARTS:
                raise QueryRejected(
                    "CONSTRUCT_NOT_ALLOWED", f"{key.rstrip('_').upper()} is not allowed here"
                )
    for join in tree.find_all(exp.Join):
        for key, value in join.args.items():
            if value and key not in _JOIN_PARTS:
                raise QueryRejected(
                    "CONSTRUCT_NOT_ALLOWED", f"{key.rstrip('_').upper()} joins are not allowed"
                )
    return tree


_TOO_DEEP = (
    f"the query nests conditions deeper than {MAX_NESTING} levels; remove redundant "
    "parentheses and NOTs, and write long lists of values as IN (...)"
)


def _check_nesting(tokens: Sequence[Token]) -> None:
    """Refuse input nested deeper than MAX_NESTING before the recursive parser sees it.

    The nesting at a token is the number of open parentheses plus the prefix operators
    (NOT, unary +/-, ~) chained in front of it at each level; counting a binary minus as
    a prefix only overestimates, which is the safe side.
    """
    runs = [0]
    for token in tokens:
        kind = token.token_type
        if kind in _PREFIX_TOKENS:
            runs[-1] += 1
        elif kind == TokenType.L_PAREN:
            runs.append(0)
        elif kind == TokenType.R_PAREN:
            if len(runs) > 1:
                runs.pop()
            runs[-1] = 0
        else:
            runs[-1] = 0
        if len(runs) - 1 + sum(runs) > MAX_NESTING:
            raise QueryRejected("TOO_COMPLEX", _TOO_DEEP)


def _check_size(tree: exp.Expr) -> None:
    """Refuse a parsed tree deeper than MAX_TREE_DEPTH or larger than MAX_TREE_NODES
    (measured without recursion, so the check itself cannot overflow the stack)."""
    stack: list[tuple[exp.Expr, int]] = [(tree, 1)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if depth > MAX_TREE_DEPTH:
            raise QueryRejected(
                "TOO_COMPLEX",
                f"the query is nested more than {MAX_TREE_DEPTH} levels deep (long AND / OR "
                "chains count one level per term); write lists of values as IN (...)",
            )
        if nodes > MAX_TREE_NODES:
            raise QueryRejected(
                "TOO_COMPLEX", f"the query has more than {MAX_TREE_NODES} parts; split it"
            )
        stack.extend((child, depth + 1) for child in node.iter_expressions())


def _name(identifier: exp.Expression | None) -> str:
    return identifier.name if isinstance(identifier, exp.Identifier) else ""


def _quoted(identifier: exp.Expression | None) -> bool:
    return isinstance(identifier, exp.Identifier) and bool(identifier.args.get("quoted"))


def _lookup(name: str, quoted: bool, names: Iterable[str], what: str) -> str | None:
    """The one of ``names`` that ``name`` means: exactly when quoted, and otherwise
    case-insensitively as the SQL standard says for unquoted identifiers (an exact match
    wins; two that differ only in case must be quoted)."""
    names = list(names)
    if name in names or quoted:
        return name if name in names else None
    folded = [n for n in names if n.casefold() == name.casefold()]
    if len(folded) > 1:
        raise QueryRejected(
            "AMBIGUOUS_NAME",
            f"{what} {name!r} matches {sorted(folded)} when case is ignored; quote the one "
            'you mean, e.g. "' + folded[0] + '"',
        )
    return folded[0] if folded else None


def _column(dataset: Dataset, name: str) -> Column:
    found = dataset.column(name)
    assert found is not None  # a name _lookup returned from this dataset's columns
    return found


def _schema_allows(table: exp.Table, dataset: Dataset) -> None:
    """A schema qualifier names the dataset's owner (one schema per provider) or the
    zone's single schema ``zone``; a catalogue is never needed."""
    if table.args.get("catalog"):
        raise QueryRejected(
            "UNKNOWN_TABLE", "write schema.dataset or dataset; a catalogue is not needed"
        )
    schema = _name(table.args.get("db"))
    if not schema:
        return
    allowed = {dataset.owner, ZONE_SCHEMA}
    if _lookup(schema, _quoted(table.args.get("db")), allowed, "schema") is None:
        raise QueryRejected(
            "UNKNOWN_TABLE",
            f"dataset {dataset.name!r} is in schema {dataset.owner!r} (its owner) or "
            f"{ZONE_SCHEMA!r}, not {schema!r}",
        )


def resolve(tree: exp.Select, catalogue: Sequence[Dataset], *, copy: bool = True) -> ResolvedQuery:
    """Resolve every table and column of ``tree`` exactly; return a qualified tree
    (a copy unless ``copy`` is False, for a tree the caller has just parsed)."""
    by_name = {d.name: d for d in catalogue}
    if copy:
        tree = tree.copy()
    tables: dict[str, str] = {}
    sources: list[exp.Table] = []
    from_ = tree.args.get("from_")
    if from_ is None:
        raise QueryRejected("BAD_SHAPE", "the query reads no dataset; add FROM <dataset>")
    sources.append(from_.this)
    for join in tree.args.get("joins") or []:
        sources.append(join.this)
    for table in sources:
        if not isinstance(table, exp.Table):
            raise QueryRejected("UNKNOWN_TABLE", "tables must be shared datasets, by name")
        written = _name(table.this)
        found = _lookup(written, _quoted(table.this), by_name, "dataset")
        if found is None:
            raise QueryRejected(
                "UNKNOWN_TABLE",
                f"no dataset named {written!r} is visible to you (`collabzone catalogue` "
                "lists them; quoted names are case-sensitive)",
            )
        name = found
        _schema_allows(table, by_name[name])
        table.set("db", None)
        alias_node = table.args.get("alias")
        alias = _name(alias_node.this) if isinstance(alias_node, exp.TableAlias) else name
        if alias_node is not None and alias_node.args.get("columns"):
            raise QueryRejected("CONSTRUCT_NOT_ALLOWED", "column aliases on tables are not allowed")
        if alias in tables:
            raise QueryRejected("BAD_SHAPE", f"table alias {alias!r} is used twice")
        tables[alias] = name
        table.set("this", exp.to_identifier(name, quoted=True))
        table.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))

    output_aliases = {
        _name(s.args.get("alias")) for s in tree.expressions if isinstance(s, exp.Alias)
    }
    resolved = ResolvedQuery(tree=tree, tables=tables)
    for column in list(tree.find_all(exp.Column)):
        ref = _resolve_column(column, tables, by_name, output_aliases)
        if ref is None:  # an ORDER BY naming an output alias
            continue
        column.set("table", exp.to_identifier(ref.alias, quoted=True))
        column.set("this", exp.to_identifier(ref.column.name, quoted=True))
        resolved.refs[id(column)] = ref
    return resolved


def _resolve_column(
    column: exp.Column,
    tables: Mapping[str, str],
    by_name: Mapping[str, Dataset],
    output_aliases: set[str],
) -> ColumnRef | None:
    if column.args.get("db") or column.args.get("catalog"):
        raise QueryRejected("UNKNOWN_COLUMN", "columns are named as column or alias.column")
    name = _name(column.this)
    quoted = _quoted(column.this)
    written_qualifier = _name(column.args.get("table"))
    if written_qualifier:
        qualifier = _lookup(
            written_qualifier, _quoted(column.args.get("table")), tables, "table or alias"
        )
        if qualifier is None:
            raise QueryRejected("UNKNOWN_TABLE", f"no table or alias {written_qualifier!r} in FROM")
        dataset = by_name[tables[qualifier]]
        found = _lookup(name, quoted, (c.name for c in dataset.columns), "column")
        if found is None:
            raise QueryRejected(
                "UNKNOWN_COLUMN", f"dataset {dataset.name!r} has no column {name!r}"
            )
        return ColumnRef(qualifier, dataset.name, _column(dataset, found))
    matches = []
    for alias, dataset_name in tables.items():
        dataset = by_name[dataset_name]
        found = _lookup(name, quoted, (c.name for c in dataset.columns), "column")
        if found is not None:
            matches.append(ColumnRef(alias, dataset_name, _column(dataset, found)))
    if not matches:
        if name in output_aliases and column.find_ancestor(exp.Order, exp.Having) is not None:
            return None  # an output named in ORDER BY, or in HAVING (DP: post-processing)
        if name in output_aliases and isinstance(column.parent, exp.Group):
            return None  # GROUP BY an output's alias (``_shape._group_item`` replaces it)
        raise QueryRejected("UNKNOWN_COLUMN", f"no dataset in FROM has a column {name!r}")
    if len(matches) > 1:
        raise QueryRejected(
            "AMBIGUOUS_COLUMN", f"column {name!r} is in several tables; write alias.{name}"
        )
    return matches[0]
