"""JQL parser: text → AST (exact trees), Jira-style errors (exact messages and
positions), canonical formatting and its round trip, and a Hypothesis property test.

Pure Python; the repo's autouse fixtures still hand these tests a database.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search.jql.ast import (
    And,
    Comparison,
    Empty,
    Field,
    FunctionCall,
    HistoryPredicate,
    JqlError,
    ListValue,
    Literal,
    Not,
    Or,
    OrderBy,
    Position,
    Query,
)
from search.jql.format import jql_format, jql_quote
from search.jql.lexer import RESERVED_WORDS
from search.jql.parser import jql_parse

# Positions are excluded from node equality, so expected trees use a placeholder.
P = Position(line=1, column=1, offset=0)
EMPTY = Empty(pos=P)


def fld(name: str, custom_id: int | None = None) -> Field:
    return Field(name=name, pos=P, custom_id=custom_id)


def word(value: str) -> Literal:
    return Literal(value=value, quoted=False, pos=P)


def text(value: str) -> Literal:
    return Literal(value=value, quoted=True, pos=P)


def fn(name: str, *args: str) -> FunctionCall:
    return FunctionCall(name=name, args=args, pos=P)


def lst(*items) -> ListValue:
    return ListValue(items=items, pos=P)


def pred(kind: str, operand) -> HistoryPredicate:
    return HistoryPredicate(kind=kind, operand=operand, pos=P)


def cmp(field: str | Field, op: str, operand=None, *predicates: HistoryPredicate) -> Comparison:
    field = fld(field) if isinstance(field, str) else field
    return Comparison(field=field, op=op, operand=operand, predicates=predicates, pos=P)


def where(clause) -> Query:
    return Query(where=clause)


def asc(name: str) -> OrderBy:
    return OrderBy(field=fld(name), descending=False)


def desc(name: str) -> OrderBy:
    return OrderBy(field=fld(name), descending=True)


STATUS_DONE = cmp("status", "=", word("Done"))

VALID = [
    # -- empty and ORDER BY only
    ("", Query(where=None)),
    ("   \n\t ", Query(where=None)),
    ("ORDER BY created", Query(where=None, order_by=(asc("created"),))),
    ("order by created desc", Query(where=None, order_by=(desc("created"),))),
    (
        "Order By priority DESC, updated ASC, key",
        Query(None, (desc("priority"), asc("updated"), asc("key"))),
    ),
    (
        'ORDER BY "Story Points" desc, cf[10001]',
        Query(None, (desc("story points"), OrderBy(fld("cf[10001]", 10001), False))),
    ),
    ("project = PROJ ORDER BY rank", Query(cmp("project", "=", word("PROJ")), (asc("rank"),))),
    # -- every comparison operator
    ("status = Done", where(STATUS_DONE)),
    ("status != Done", where(cmp("status", "!=", word("Done")))),
    ("votes > 5", where(cmp("votes", ">", word("5")))),
    ("votes >= 5", where(cmp("votes", ">=", word("5")))),
    ("votes < 5.5", where(cmp("votes", "<", word("5.5")))),
    ("votes <= -2", where(cmp("votes", "<=", word("-2")))),
    ('summary ~ "login page"', where(cmp("summary", "~", text("login page")))),
    ("summary !~ crash", where(cmp("summary", "!~", word("crash")))),
    ("summary ~ win*", where(cmp("summary", "~", word("win*")))),
    (
        "status in (Open, 'In Progress')",
        where(cmp("status", "in", lst(word("Open"), text("In Progress")))),
    ),
    ("status not in (Done)", where(cmp("status", "not in", lst(word("Done"))))),
    (
        "status NOT IN (Done, Closed)",
        where(cmp("status", "not in", lst(word("Done"), word("Closed")))),
    ),
    ("assignee is EMPTY", where(cmp("assignee", "is", EMPTY))),
    ("assignee IS NULL", where(cmp("assignee", "is", EMPTY))),
    ("assignee is not empty", where(cmp("assignee", "is not", EMPTY))),
    ("assignee IS NOT null", where(cmp("assignee", "is not", EMPTY))),
    ("assignee = EMPTY", where(cmp("assignee", "=", EMPTY))),
    ("assignee != null", where(cmp("assignee", "!=", EMPTY))),
    ('status = "EMPTY"', where(cmp("status", "=", text("EMPTY")))),
    ("status was Open", where(cmp("status", "was", word("Open")))),
    ("status WAS NOT Open", where(cmp("status", "was not", word("Open")))),
    ("status was in (Open, Done)", where(cmp("status", "was in", lst(word("Open"), word("Done"))))),
    ("status WAS NOT IN (Open)", where(cmp("status", "was not in", lst(word("Open"))))),
    ("assignee was empty", where(cmp("assignee", "was", EMPTY))),
    ("status changed", where(cmp("status", "changed"))),
    ("status CHANGED", where(cmp("status", "changed"))),
    # -- operators without spaces
    ("status=Done", where(STATUS_DONE)),
    ("status!=Done", where(cmp("status", "!=", word("Done")))),
    ("created>=-1d", where(cmp("created", ">=", word("-1d")))),
    ("summary!~foo", where(cmp("summary", "!~", word("foo")))),
    ("status in(Open,Done)", where(cmp("status", "in", lst(word("Open"), word("Done"))))),
    # -- history predicates, alone and combined in any order
    ("status changed FROM Open", where(cmp("status", "changed", None, pred("from", word("Open"))))),
    ('status changed to "Done"', where(cmp("status", "changed", None, pred("to", text("Done"))))),
    (
        'status CHANGED FROM "In Progress" TO Done',
        where(
            cmp(
                "status",
                "changed",
                None,
                pred("from", text("In Progress")),
                pred("to", word("Done")),
            )
        ),
    ),
    (
        "status changed to Done from Open",
        where(cmp("status", "changed", None, pred("to", word("Done")), pred("from", word("Open")))),
    ),
    ("assignee changed from empty", where(cmp("assignee", "changed", None, pred("from", EMPTY)))),
    (
        "status changed by currentUser()",
        where(cmp("status", "changed", None, pred("by", fn("currentuser")))),
    ),
    ("status changed by jsmith", where(cmp("status", "changed", None, pred("by", word("jsmith"))))),
    (
        'status changed BY (jsmith, "mary k", currentUser())',
        where(
            cmp(
                "status",
                "changed",
                None,
                pred("by", lst(word("jsmith"), text("mary k"), fn("currentuser"))),
            )
        ),
    ),
    (
        "status changed after -30d",
        where(cmp("status", "changed", None, pred("after", word("-30d")))),
    ),
    (
        'status changed before "2026/01/31"',
        where(cmp("status", "changed", None, pred("before", text("2026/01/31")))),
    ),
    (
        "status changed on 2026-01-31",
        where(cmp("status", "changed", None, pred("on", word("2026-01-31")))),
    ),
    (
        "status changed during (startOfWeek(), now())",
        where(cmp("status", "changed", None, pred("during", lst(fn("startofweek"), fn("now"))))),
    ),
    (
        'status was "In Progress" during ("2026/01/01", "2026/01/31")',
        where(
            cmp(
                "status",
                "was",
                text("In Progress"),
                pred("during", lst(text("2026/01/01"), text("2026/01/31"))),
            )
        ),
    ),
    (
        "status was Open BY jsmith before endOfMonth(-1) after startOfMonth(-1) ON 2026/01/15",
        where(
            cmp(
                "status",
                "was",
                word("Open"),
                pred("by", word("jsmith")),
                pred("before", fn("endofmonth", "-1")),
                pred("after", fn("startofmonth", "-1")),
                pred("on", word("2026/01/15")),
            )
        ),
    ),
    (
        "status was not in (Open, Done) after -1w",
        where(
            cmp("status", "was not in", lst(word("Open"), word("Done")), pred("after", word("-1w")))
        ),
    ),
    (
        "status CHANGED TO Done AFTER -30d",
        where(
            cmp("status", "changed", None, pred("to", word("Done")), pred("after", word("-30d")))
        ),
    ),
    (
        "status changed after -2d after -1d",
        where(
            cmp("status", "changed", None, pred("after", word("-2d")), pred("after", word("-1d")))
        ),
    ),
    # -- logic, precedence, flattening
    (
        "project = PROJ AND status = Done",
        where(And((cmp("project", "=", word("PROJ")), STATUS_DONE))),
    ),
    (
        "project = PROJ && status = Done",
        where(And((cmp("project", "=", word("PROJ")), STATUS_DONE))),
    ),
    ("x1 = 1 OR x2 = 2", where(Or((cmp("x1", "=", word("1")), cmp("x2", "=", word("2")))))),
    ("x1 = 1 || x2 = 2", where(Or((cmp("x1", "=", word("1")), cmp("x2", "=", word("2")))))),
    (
        "x1 = 1 or x2 = 2 and x3 = 3",
        where(
            Or(
                (
                    cmp("x1", "=", word("1")),
                    And((cmp("x2", "=", word("2")), cmp("x3", "=", word("3")))),
                )
            )
        ),
    ),
    (
        "x1 = 1 and x2 = 2 or x3 = 3",
        where(
            Or(
                (
                    And((cmp("x1", "=", word("1")), cmp("x2", "=", word("2")))),
                    cmp("x3", "=", word("3")),
                )
            )
        ),
    ),
    (
        "(x1 = 1 or x2 = 2) and x3 = 3",
        where(
            And(
                (
                    Or((cmp("x1", "=", word("1")), cmp("x2", "=", word("2")))),
                    cmp("x3", "=", word("3")),
                )
            )
        ),
    ),
    (
        "x1 = 1 and x2 = 2 AND x3 = 3 && x4 = 4",
        where(And(tuple(cmp(f"x{i}", "=", word(str(i))) for i in range(1, 5)))),
    ),
    (
        "x1 = 1 and (x2 = 2 and (x3 = 3 and x4 = 4))",
        where(And(tuple(cmp(f"x{i}", "=", word(str(i))) for i in range(1, 5)))),
    ),
    (
        "(x1 = 1 or x2 = 2) or (x3 = 3 || x4 = 4)",
        where(Or(tuple(cmp(f"x{i}", "=", word(str(i))) for i in range(1, 5)))),
    ),
    ("((status = Done))", where(STATUS_DONE)),
    ("NOT status = Done", where(Not(STATUS_DONE))),
    ("not status = Done", where(Not(STATUS_DONE))),
    ("!status = Done", where(Not(STATUS_DONE))),
    ("! status = Done", where(Not(STATUS_DONE))),
    ("NOT NOT status = Done", where(Not(Not(STATUS_DONE)))),
    (
        "NOT status = Done AND x2 = 2",
        where(And((Not(STATUS_DONE), cmp("x2", "=", word("2"))))),
    ),
    (
        "NOT (status = Done OR x2 = 2)",
        where(Not(Or((STATUS_DONE, cmp("x2", "=", word("2")))))),
    ),
    (
        "!(status = Done && x2 = 2) || x3 = 3",
        where(Or((Not(And((STATUS_DONE, cmp("x2", "=", word("2"))))), cmp("x3", "=", word("3"))))),
    ),
    (
        "status = Done and not assignee in (jsmith)",
        where(And((STATUS_DONE, Not(cmp("assignee", "in", lst(word("jsmith"))))))),
    ),
    (
        "assignee = currentUser() AND statusCategory != Done ORDER BY priority DESC, updated DESC",
        Query(
            And(
                (cmp("assignee", "=", fn("currentuser")), cmp("statuscategory", "!=", word("Done")))
            ),
            (desc("priority"), desc("updated")),
        ),
    ),
    # -- case-insensitive keywords and fields
    ("STATUS = Done", where(STATUS_DONE)),
    ("Status In (Done)", where(cmp("status", "in", lst(word("Done"))))),
    ("fixVersion = 1.2.0", where(cmp("fixversion", "=", word("1.2.0")))),
    ("issuetype = Bug", where(cmp("issuetype", "=", word("Bug")))),
    (
        "x1 = 1 And x2 = 2 oR x3 = 3",
        where(
            Or(
                (
                    And((cmp("x1", "=", word("1")), cmp("x2", "=", word("2")))),
                    cmp("x3", "=", word("3")),
                )
            )
        ),
    ),
    ("status Was Not In (Done)", where(cmp("status", "was not in", lst(word("Done"))))),
    # -- field names: quoted, custom, odd characters
    ('"Epic Link" = PROJ-1', where(cmp("epic link", "=", word("PROJ-1")))),
    ("'Story Points' > 3", where(cmp("story points", ">", word("3")))),
    ('"story points" >= 8', where(cmp("story points", ">=", word("8")))),
    ('"order" = 1', where(cmp("order", "=", word("1")))),
    ("cf[10001] = 5", where(cmp(fld("cf[10001]", 10001), "=", word("5")))),
    ("CF[42] is empty", where(cmp(fld("cf[42]", 42), "is", EMPTY))),
    ("cf[007] ~ x7", where(cmp(fld("cf[7]", 7), "~", word("x7")))),
    ('"cf[10001]" = 5', where(cmp("cf[10001]", "=", word("5")))),
    ("my_field.sub-part = v", where(cmp("my_field.sub-part", "=", word("v")))),
    ("Größe = groß", where(cmp("größe", "=", word("groß")))),
    # -- values: words, numbers, dates, relative dates, escapes
    ("key = PROJ-123", where(cmp("key", "=", word("PROJ-123")))),
    ("created > -1d", where(cmp("created", ">", word("-1d")))),
    ("created > 2w", where(cmp("created", ">", word("2w")))),
    ("updated < -4h", where(cmp("updated", "<", word("-4h")))),
    ("updated >= 30m", where(cmp("updated", ">=", word("30m")))),
    ("due <= +2d", where(cmp("due", "<=", word("+2d")))),
    ("created >= 2026/01/31", where(cmp("created", ">=", word("2026/01/31")))),
    ("created >= 2026-01-31", where(cmp("created", ">=", word("2026-01-31")))),
    ('created >= "2026-01-31 14:00"', where(cmp("created", ">=", text("2026-01-31 14:00")))),
    ("reporter = jsmith@example.com", where(cmp("reporter", "=", word("jsmith@example.com")))),
    ('status = "and"', where(cmp("status", "=", text("and")))),
    ("status = 'order'", where(cmp("status", "=", text("order")))),
    ('labels = "select"', where(cmp("labels", "=", text("select")))),
    ('summary ~ "say \\"hi\\""', where(cmp("summary", "~", text('say "hi"')))),
    ("summary ~ 'it\\'s'", where(cmp("summary", "~", text("it's")))),
    ('summary ~ "it\'s"', where(cmp("summary", "~", text("it's")))),
    ("summary ~ 'say \"hi\"'", where(cmp("summary", "~", text('say "hi"')))),
    ('summary ~ "back\\\\slash"', where(cmp("summary", "~", text("back\\slash")))),
    ('summary ~ "line\\nnext\\ttab\\rcr"', where(cmp("summary", "~", text("line\nnext\ttab\rcr")))),
    ('summary ~ "caf\\u00e9 \\u00C9"', where(cmp("summary", "~", text("café É")))),
    ('summary ~ "\\ud83d\\ude00"', where(cmp("summary", "~", text("\U0001f600")))),
    ('summary ~ ""', where(cmp("summary", "~", text("")))),
    ('summary ~ "café ☕"', where(cmp("summary", "~", text("café ☕")))),
    # -- functions, in lists and with arguments
    ("assignee = currentUser()", where(cmp("assignee", "=", fn("currentuser")))),
    (
        'assignee in membersOf("jira-users")',
        where(cmp("assignee", "in", fn("membersof", "jira-users"))),
    ),
    (
        "assignee in membersOf(jira-users)",
        where(cmp("assignee", "in", fn("membersof", "jira-users"))),
    ),
    ("created > startOfDay()", where(cmp("created", ">", fn("startofday")))),
    ('created > startOfDay("-1")', where(cmp("created", ">", fn("startofday", "-1")))),
    ("created < endOfWeek(+2d)", where(cmp("created", "<", fn("endofweek", "+2d")))),
    ("sprint in openSprints()", where(cmp("sprint", "in", fn("opensprints")))),
    (
        "issue in linkedIssues(PROJ-1, 'blocks')",
        where(cmp("issue", "in", fn("linkedissues", "PROJ-1", "blocks"))),
    ),
    ("created > now ( )", where(cmp("created", ">", fn("now")))),
    (
        'assignee in (currentUser(), jsmith, "Mary K", membersOf("devs"), EMPTY)',
        where(
            cmp(
                "assignee",
                "in",
                lst(
                    fn("currentuser"),
                    word("jsmith"),
                    text("Mary K"),
                    fn("membersof", "devs"),
                    EMPTY,
                ),
            )
        ),
    ),
    # -- layout: newlines, tabs, extra spaces
    (
        "project = PROJ\nAND status = Done\n\tORDER BY key",
        Query(And((cmp("project", "=", word("PROJ")), STATUS_DONE)), (asc("key"),)),
    ),
    ("  status   =   Done  ", where(STATUS_DONE)),
]


@pytest.mark.parametrize(("jql", "expected"), VALID, ids=[q or "<empty>" for q, _ in VALID])
def test_valid_query_parses_to_exact_tree(jql, expected):
    # given a valid query
    # when
    query = jql_parse(jql)
    # then
    assert query == expected


@pytest.mark.parametrize("jql", [q for q, _ in VALID], ids=[q or "<empty>" for q, _ in VALID])
def test_formatted_query_parses_back_to_the_same_tree(jql):
    # given a parsed query
    query = jql_parse(jql)
    # when
    formatted = jql_format(query)
    # then
    assert jql_parse(formatted) == query
    assert jql_format(jql_parse(formatted)) == formatted


INVALID = [
    ("status", "Expecting operator but got end of query at line 1, character 7"),
    ("project = PROJ AND status foo", "Expecting operator but got 'foo' at line 1, character 27"),
    ("status Done", "Expecting operator but got 'Done' at line 1, character 8"),
    (
        "status =",
        "Expecting either a value, list or function but got end of query at line 1, character 9",
    ),
    (
        "status = )",
        "Expecting either a value, list or function but got ')' at line 1, character 10",
    ),
    (
        "status = and",
        "Expecting either a value, list or function but got 'and' at line 1, character 10",
    ),
    (
        "status = ORDER BY key",
        "Expecting either a value, list or function but got 'ORDER' at line 1, character 10",
    ),
    ("status = select", "Reserved word 'select' must be quoted at line 1, character 10"),
    ("labels = Update", "Reserved word 'Update' must be quoted at line 1, character 10"),
    ("select = 1", "Reserved word 'select' must be quoted at line 1, character 1"),
    ("= Done", "Expecting a field name but got '=' at line 1, character 1"),
    ("AND status = Done", "Expecting a field name but got 'AND' at line 1, character 1"),
    ("status = Done AND", "Expecting a field name but got end of query at line 1, character 18"),
    ("status = Done OR OR x = 1", "Expecting a field name but got 'OR' at line 1, character 18"),
    ('"" = 1', "Expecting a field name but got '\"\"' at line 1, character 1"),
    ("status = Done foo", "Expecting either 'OR' or 'AND' but got 'foo' at line 1, character 15"),
    ("status = Done)", "Expecting either 'OR' or 'AND' but got ')' at line 1, character 14"),
    ('status = Done "x"', "Expecting either 'OR' or 'AND' but got '\"x\"' at line 1, character 15"),
    ("(status = Done", "Expecting ')' but got end of query at line 1, character 15"),
    ("((status = Done)", "Expecting ')' but got end of query at line 1, character 17"),
    (
        "(status = Done x = 1)",
        "Expecting either 'OR', 'AND' or ')' but got 'x' at line 1, character 16",
    ),
    ("()", "Expecting a field name but got ')' at line 1, character 2"),
    ("status in ()", "Expecting either a value or function but got ')' at line 1, character 12"),
    ("status in (Done", "Expecting ')' but got end of query at line 1, character 16"),
    (
        "status in (Done,",
        "Expecting either a value or function but got end of query at line 1, character 17",
    ),
    (
        "status in (Done,)",
        "Expecting either a value or function but got ')' at line 1, character 17",
    ),
    ("status in (Done Open)", "Expecting ',' or ')' but got 'Open' at line 1, character 17"),
    (
        "status in ((Done))",
        "Expecting either a value or function but got '(' at line 1, character 12",
    ),
    (
        "status in Done",
        "Expecting a list or function after 'IN' but got 'Done' at line 1, character 11",
    ),
    (
        "status not in Done",
        "Expecting a list or function after 'NOT IN' but got 'Done' at line 1, character 15",
    ),
    (
        "status was in Done",
        "Expecting a list or function after 'WAS IN' but got 'Done' at line 1, character 15",
    ),
    ("status = (Done, Open)", "The operator '=' does not support lists at line 1, character 10"),
    ("status was (Done)", "The operator 'WAS' does not support lists at line 1, character 12"),
    ("status not = Done", "Expecting 'IN' after 'NOT' but got '=' at line 1, character 12"),
    (
        "assignee is jsmith",
        "Expecting EMPTY or NULL after 'IS' but got 'jsmith' at line 1, character 13",
    ),
    (
        "assignee is not",
        "Expecting EMPTY or NULL after 'IS NOT' but got end of query at line 1, character 16",
    ),
    ("assignee = f(", "Expecting a function argument but got end of query at line 1, character 14"),
    ("assignee = f(x", "Expecting ')' but got end of query at line 1, character 15"),
    ("assignee = f(x y)", "Expecting ',' or ')' but got 'y' at line 1, character 16"),
    ("assignee = f(x,)", "Expecting a function argument but got ')' at line 1, character 16"),
    ("assignee = f(and)", "Expecting a function argument but got 'and' at line 1, character 14"),
    ("assignee = f(g())", "Expecting ',' or ')' but got '(' at line 1, character 15"),
    ('summary ~ "abc', "Unterminated string at line 1, character 11"),
    ("summary ~ 'abc\"", "Unterminated string at line 1, character 11"),
    ('summary ~ "abc\ndef"', "Unterminated string at line 1, character 11"),
    ('summary ~ "abc\\"', "Unterminated string at line 1, character 11"),
    ('summary ~ "a\\qb"', "Illegal escape sequence '\\q' at line 1, character 13"),
    ('summary ~ "a\\u12g4"', "Illegal escape sequence '\\u12g4' at line 1, character 13"),
    ('summary ~ "a\\u12"', "Illegal escape sequence '\\u12\"' at line 1, character 13"),
    ("status = Done #", "Unexpected character '#' at line 1, character 15"),
    ("status = Done & x = 1", "Unexpected character '&' at line 1, character 15"),
    ("status = Done | x = 1", "Unexpected character '|' at line 1, character 15"),
    ("status = $x", "Unexpected character '$' at line 1, character 10"),
    ("status[1] = x", "Unexpected character '[' at line 1, character 7"),
    ("summary ~ foo\\ bar", "Unexpected character '\\' at line 1, character 14"),
    ("cf[abc] = 1", "Expecting a custom field id in 'cf[...]' but got 'a' at line 1, character 4"),
    ("cf[", "Expecting a custom field id in 'cf[...]' but got end of query at line 1, character 4"),
    ("cf[10001 = 1", "Expecting ']' after the custom field id but got ' ' at line 1, character 9"),
    ("cf = 1", "Reserved word 'cf' must be quoted at line 1, character 1"),
    ("status = Done ORDER key", "Expecting 'BY' after 'ORDER' at line 1, character 21"),
    ("ORDER", "Expecting 'BY' after 'ORDER' at line 1, character 6"),
    ("ORDER BY", "Expecting a field name but got end of query at line 1, character 9"),
    ("ORDER BY key,", "Expecting a field name but got end of query at line 1, character 14"),
    (
        "ORDER BY key DESC rank",
        "Expecting ',' or end of query but got 'rank' at line 1, character 19",
    ),
    (
        "ORDER BY key rank",
        "Expecting either 'ASC', 'DESC', ',' or end of query but got 'rank' at"
        " line 1, character 14",
    ),
    (
        "ORDER BY key AND x = 1",
        "Expecting either 'ASC', 'DESC', ',' or end of query but got 'AND' at line 1, character 14",
    ),
    (
        "status = Done FROM Open",
        "The operator '=' does not support the history predicate 'FROM' at line 1, character 15",
    ),
    (
        "status in (Done) after -1d",
        "The operator 'IN' does not support the history predicate 'AFTER' at line 1, character 18",
    ),
    (
        "assignee is empty BY jsmith",
        "The operator 'IS' does not support the history predicate 'BY' at line 1, character 19",
    ),
    (
        "status was Done FROM Open",
        "The operator 'WAS' does not support the history predicate 'FROM' at line 1, character 17",
    ),
    (
        "status was not Done to Open",
        "The operator 'WAS NOT' does not support the history predicate 'TO' at"
        " line 1, character 21",
    ),
    ("status changed UNTIL -1d", "Unknown history predicate 'UNTIL' at line 1, character 16"),
    ("status was Done since -1d", "Unknown history predicate 'since' at line 1, character 17"),
    (
        "status changed from",
        "Expecting either a value or function after 'FROM' but got end of"
        " query at line 1, character 20",
    ),
    (
        "status changed after empty",
        "Expecting either a value or function after 'AFTER' but got 'empty' at"
        " line 1, character 22",
    ),
    (
        "status changed on (-1d)",
        "Expecting either a value or function after 'ON' but got '(' at line 1, character 19",
    ),
    (
        "status changed by",
        "Expecting either a value, list or function after 'BY' but got end of"
        " query at line 1, character 18",
    ),
    (
        "status changed during -1d",
        "Expecting '(' after 'DURING' but got '-1d' at line 1, character 23",
    ),
    (
        "status changed during (-1d)",
        "The history predicate 'DURING' expects exactly two dates but got 1 at"
        " line 1, character 23",
    ),
    (
        "status changed during (-3d, -2d, -1d)",
        "The history predicate 'DURING' expects exactly two dates but got 3 at"
        " line 1, character 23",
    ),
    (
        "status changed during (-2d, -1d",
        "Expecting ')' but got end of query at line 1, character 32",
    ),
    (
        "status = Done AND NOT",
        "Expecting a field name but got end of query at line 1, character 22",
    ),
    ("!", "Expecting a field name but got end of query at line 1, character 2"),
    (
        "(" * 101 + "x1 = 1" + ")" * 101,
        "The query nests more than 100 levels deep at line 1, character 101",
    ),
    ("NOT " * 101 + "x1 = 1", "The query nests more than 100 levels deep at line 1, character 401"),
    ("project = PROJ\nAND status foo", "Expecting operator but got 'foo' at line 2, character 12"),
    ("project = PROJ\n\nAND status = 'x\n", "Unterminated string at line 3, character 14"),
    ("project = PROJ AND\r\n  # x", "Unexpected character '#' at line 2, character 3"),
]


@pytest.mark.parametrize(("jql", "message"), INVALID, ids=[q[:40] for q, _ in INVALID])
def test_malformed_query_is_rejected_with_exact_message_and_position(jql, message):
    # given a malformed query
    # when
    with pytest.raises(JqlError) as error:
        jql_parse(jql)
    # then
    assert str(error.value) == message
    assert error.value.message == message
    assert error.value.reason == message.rsplit(" at line ", 1)[0]


def test_nesting_up_to_the_limit_is_accepted():
    # given 100 levels of parentheses and 100 NOTs
    # when
    grouped = jql_parse("(" * 100 + "x1 = 1" + ")" * 100)
    negated = jql_parse("!" * 100 + "x1 = 1")
    # then
    assert grouped == where(cmp("x1", "=", word("1")))
    inner = negated.where
    for _ in range(100):
        assert isinstance(inner, Not)
        inner = inner.clause
    assert inner == cmp("x1", "=", word("1"))


def test_positions_are_one_based_lines_and_characters():
    # given a query over two lines
    jql = 'project = PROJ\n  AND "Epic Link" in (E-1, f(x))'
    # when
    query = jql_parse(jql)
    # then
    first, second = query.where.clauses
    assert first.pos == Position(line=1, column=1, offset=0)
    assert first.field.pos == Position(line=1, column=1, offset=0)
    assert first.operand.pos == Position(line=1, column=11, offset=10)
    assert second.pos == Position(line=2, column=7, offset=21)
    assert second.operand.pos == Position(line=2, column=22, offset=36)
    assert second.operand.items[0].pos == Position(line=2, column=23, offset=37)
    assert second.operand.items[1].pos == Position(line=2, column=28, offset=42)


def test_history_predicate_positions_point_at_the_keyword():
    # given
    jql = "status changed TO Done DURING (-2d, -1d)"
    # when
    comparison = jql_parse(jql).where
    # then
    assert [p.pos.column for p in comparison.predicates] == [16, 24]
    assert comparison.predicates[1].operand.pos.column == 31


def test_equality_ignores_positions():
    # given the same query laid out differently
    # when
    spaced = jql_parse("status  =  Done   AND\n  x1 in (a1 , b1)")
    tight = jql_parse("status=Done AND x1 in(a1,b1)")
    # then
    assert spaced == tight
    assert hash(spaced) == hash(tight)


@pytest.mark.parametrize(
    ("jql", "canonical"),
    [
        ("", ""),
        ("order by Key asc, created DESC", "ORDER BY key, created DESC"),
        ("status=Done&&x1!=2||!x3~'y'", 'status = Done AND x1 != 2 OR NOT x3 ~ "y"'),
        (
            "(x1 = 1 or x2 = 2) and not (x3 = 3 and x4 = 4)",
            "(x1 = 1 OR x2 = 2) AND NOT (x3 = 3 AND x4 = 4)",
        ),
        ("x1 = 1 or (x2 = 2 and x3 = 3)", "x1 = 1 OR x2 = 2 AND x3 = 3"),
        ('"Epic Link" = E-1', '"epic link" = E-1'),
        ("cf[00042] is not null", "cf[42] IS NOT EMPTY"),
        (
            "status was not in (a1, 'b c') by currentUser()",
            'status WAS NOT IN (a1, "b c") BY currentuser()',
        ),
        (
            "status changed from Open to Done during (startOfDay(-1), now())",
            "status CHANGED FROM Open TO Done DURING (startofday(-1), now())",
        ),
        ("x1 = 'it\\'s \"q\"\\\\'", 'x1 = "it\'s \\"q\\"\\\\"'),
        ('x1 = f("a b", "and", plain)', 'x1 = f("a b", "and", plain)'),
        ('"order" = "1"', '"order" = "1"'),
    ],
)
def test_format_writes_canonical_jql(jql, canonical):
    # given
    query = jql_parse(jql)
    # when
    formatted = jql_format(query)
    # then
    assert formatted == canonical


def test_format_quotes_unquoted_values_that_would_not_read_back():
    # given a tree built by code, not by the parser
    query = Query(
        where=Comparison(
            field=Field(name="my field", pos=P),
            op="=",
            operand=Literal(value="and", quoted=False, pos=P),
            pos=P,
        )
    )
    # when
    formatted = jql_format(query)
    # then
    assert formatted == '"my field" = "and"'
    assert jql_parse(formatted) == where(cmp("my field", "=", text("and")))


def test_quote_escapes_quotes_backslashes_and_control_characters():
    # given / when
    quoted = jql_quote("a\"b\\c\nd\te\rf\x00g\x7fh'")
    # then
    assert quoted == '"a\\"b\\\\c\\nd\\te\\rf\\u0000g\\u007fh\'"'
    assert jql_parse(f"x1 = {quoted}").where.operand.value == "a\"b\\c\nd\te\rf\x00g\x7fh'"


# -- property: random trees survive format → parse ----------------------------------------

_names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: n not in RESERVED_WORDS
)
_field_names = st.one_of(
    _names, st.text(min_size=1, max_size=12).filter(lambda n: n.strip() and n.lower() == n)
)
_fields = st.one_of(
    st.builds(lambda n: Field(name=n, pos=P), _field_names),
    st.builds(lambda i: Field(name=f"cf[{i}]", pos=P, custom_id=i), st.integers(0, 10**9)),
)
_unquoted = st.from_regex(r"[A-Za-z0-9_.\-/:+*@]{1,10}", fullmatch=True).filter(
    lambda w: w.lower() not in RESERVED_WORDS
)
_literals = st.one_of(
    st.builds(lambda v: Literal(value=v, quoted=False, pos=P), _unquoted),
    st.builds(lambda v: Literal(value=v, quoted=True, pos=P), st.text(max_size=12)),
)
_functions = st.builds(
    lambda n, a: FunctionCall(name=n, args=tuple(a), pos=P),
    _names,
    st.lists(st.one_of(_unquoted, st.text(max_size=8)), max_size=3),
)
_empty = st.just(EMPTY)
_singles = st.one_of(_literals, _functions)
_list_items = st.one_of(_literals, _functions, _empty)
_lists = st.builds(
    lambda items: ListValue(items=tuple(items), pos=P),
    st.lists(_list_items, min_size=1, max_size=4),
)
_dates = st.builds(lambda a, b: ListValue(items=(a, b), pos=P), _singles, _singles)
_WAS_KINDS = ("after", "before", "by", "during", "on")


def _predicate(kind: str):
    if kind == "during":
        operand = _dates
    elif kind == "by":
        operand = st.one_of(_singles, _lists)
    elif kind in ("from", "to"):
        operand = st.one_of(_singles, _empty)
    else:
        operand = _singles
    return st.builds(lambda o: HistoryPredicate(kind=kind, operand=o, pos=P), operand)


def _predicates(kinds: tuple[str, ...]):
    return st.lists(st.sampled_from(kinds).flatmap(_predicate), max_size=3).map(tuple)


def _comparison(op: str):
    if op in ("is", "is not"):
        operand = _empty
    elif op in ("in", "not in", "was in", "was not in"):
        operand = st.one_of(_lists, _functions)
    elif op == "changed":
        operand = st.none()
    else:
        operand = st.one_of(_singles, _empty)
    if op == "changed":
        predicates = _predicates((*_WAS_KINDS, "from", "to"))
    elif op.startswith("was"):
        predicates = _predicates(_WAS_KINDS)
    else:
        predicates = st.just(())
    return st.builds(
        lambda f, o, p: Comparison(field=f, op=op, operand=o, predicates=p, pos=P),
        _fields,
        operand,
        predicates,
    )


_OPS = ("=", "!=", ">", ">=", "<", "<=", "~", "!~", "in", "not in", "is", "is not")
_comparisons = st.sampled_from(
    (*_OPS, "was", "was in", "was not", "was not in", "changed")
).flatmap(_comparison)


def _combine(children):
    def flat(kind, clauses):
        out = []
        for clause in clauses:
            out.extend(clause.clauses if isinstance(clause, kind) else (clause,))
        return kind(clauses=tuple(out))

    many = st.lists(children, min_size=2, max_size=3)
    return st.one_of(
        st.builds(Not, children),
        many.map(lambda cs: flat(And, cs)),
        many.map(lambda cs: flat(Or, cs)),
    )


_clauses = st.recursive(_comparisons, _combine, max_leaves=8)
_order = st.lists(st.builds(OrderBy, _fields, st.booleans()), max_size=3).map(tuple)
_queries = st.builds(Query, st.one_of(st.none(), _clauses), _order)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=_queries)
def test_random_tree_survives_format_and_parse(query):
    # given a random tree in the parser's normal form
    # when
    formatted = jql_format(query)
    # then
    assert jql_parse(formatted) == query


_JQL_ALPHABET = st.sampled_from(
    [
        *"abxyz019 -_./*@\"'\\()[],=!<>~&|#\n",
        *("AND ", " OR ", " NOT ", " IN ", " IS ", " WAS ", " CHANGED ", "EMPTY", "ORDER BY "),
        *(" from ", " to ", " by ", " during ", " after ", "cf[1]", "f()", "\\u00e9", "é"),
    ]
)


@settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(jql=st.lists(_JQL_ALPHABET, max_size=25).map("".join))
def test_any_text_parses_or_fails_with_a_positioned_jql_error(jql):
    # given arbitrary text made of JQL's building blocks
    # when
    try:
        query, failure = jql_parse(jql), None
    except JqlError as error:
        query, failure = None, error
    # then a malformed query says where; a valid one survives the round trip
    if failure is not None:
        assert failure.pos is not None
        assert 0 <= failure.pos.offset <= len(jql)
        assert failure.message.endswith(
            f" at line {failure.pos.line}, character {failure.pos.column}"
        )
    else:
        assert jql_parse(jql_format(query)) == query
