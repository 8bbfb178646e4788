"""JQL text → `ast.Query`: a recursive-descent parser with Jira-style error messages.

    query      := [or_expr] [ORDER BY order_item ("," order_item)*] EOF
    or_expr    := and_expr ((OR | "||") and_expr)*
    and_expr   := not_expr ((AND | "&&") not_expr)*
    not_expr   := (NOT | "!") not_expr | "(" or_expr ")" | comparison
    comparison := field operator [operand] history_predicate*
    order_item := field [ASC | DESC]

Operators decide which operand they take (IS: EMPTY/NULL only; IN: a list or a
function; CHANGED: none) and whether history predicates may follow (WAS*: AFTER,
BEFORE, BY, DURING, ON; CHANGED: those and FROM, TO), as Atlassian documents them.
"""

from search.jql import ast
from search.jql.lexer import KEYWORDS, RESERVED_WORDS, Kind, Token, jql_tokens

LIST_OPERATORS = frozenset({"in", "not in", "was in", "was not in"})
HISTORY_PREDICATES = {
    "was": ("after", "before", "by", "during", "on"),
    "was in": ("after", "before", "by", "during", "on"),
    "was not": ("after", "before", "by", "during", "on"),
    "was not in": ("after", "before", "by", "during", "on"),
    "changed": ("after", "before", "by", "during", "on", "from", "to"),
}
ALL_PREDICATES = HISTORY_PREDICATES["changed"]
LOGICAL_WORDS = ("and", "or", "order")
# Parentheses and NOTs nest by recursion; past this depth a query is refused rather
# than overflowing Python's stack.
MAX_DEPTH = 100


def jql_parse(text: str) -> ast.Query:
    """Parse a JQL query; raises `ast.JqlError` with the 1-based line and character."""
    return _Parser(jql_tokens(text)).query()


def _quoted_upper(op: str) -> str:
    return f"'{op.upper()}'"


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = tokens
        self._index = 0
        self._depth = 0

    # -- token helpers ------------------------------------------------------------------

    @property
    def _token(self) -> Token:
        return self._tokens[self._index]

    def _peek(self) -> Token:
        return self._tokens[min(self._index + 1, len(self._tokens) - 1)]

    def _advance(self) -> Token:
        token = self._token
        if token.kind is not Kind.EOF:
            self._index += 1
        return token

    def _fail(self, expecting: str, token: Token | None = None) -> ast.JqlError:
        token = token or self._token
        return ast.JqlError(f"Expecting {expecting} but got {token.describe()}", token.pos)

    def _expect_close(self, *, otherwise: str) -> None:
        """Consume `)`; at the end of the query say so, else `Expecting <otherwise>`."""
        if self._token.kind is Kind.RPAREN:
            self._advance()
            return
        raise self._fail("')'" if self._token.kind is Kind.EOF else otherwise)

    # -- clauses ------------------------------------------------------------------------

    def query(self) -> ast.Query:
        where = None
        if self._token.kind is not Kind.EOF and not self._token.is_word("order"):
            where = self._or()
            if self._token.kind is not Kind.EOF and not self._token.is_word("order"):
                raise self._fail("either 'OR' or 'AND'")
        order_by = self._order_by() if self._token.is_word("order") else ()
        return ast.Query(where=where, order_by=order_by)

    def _or(self) -> ast.Clause:
        clauses = [self._and()]
        while self._token.kind is Kind.OR or self._token.is_word("or"):
            self._advance()
            clauses.append(self._and())
        return _flatten(ast.Or, clauses)

    def _and(self) -> ast.Clause:
        clauses = [self._not()]
        while self._token.kind is Kind.AND or self._token.is_word("and"):
            self._advance()
            clauses.append(self._not())
        return _flatten(ast.And, clauses)

    def _not(self) -> ast.Clause:
        nested = self._token.kind is Kind.BANG or self._token.is_word("not")
        if not nested and self._token.kind is not Kind.LPAREN:
            return self._comparison()
        if self._depth >= MAX_DEPTH:
            message = f"The query nests more than {MAX_DEPTH} levels deep"
            raise ast.JqlError(message, self._token.pos)
        self._depth += 1
        self._advance()
        if nested:
            clause: ast.Clause = ast.Not(self._not())
        else:
            clause = self._or()
            self._expect_close(otherwise="either 'OR', 'AND' or ')'")
        self._depth -= 1
        return clause

    def _comparison(self) -> ast.Comparison:
        field = self._field()
        op = self._operator()
        operand = None if op == "changed" else self._operand_for(op)
        predicates = self._predicates(op)
        return ast.Comparison(
            field=field, op=op, operand=operand, predicates=predicates, pos=field.pos
        )

    def _field(self) -> ast.Field:
        token = self._token
        if token.kind is Kind.CUSTOM_FIELD:
            self._advance()
            custom_id = int(token.value)
            return ast.Field(name=f"cf[{custom_id}]", pos=token.pos, custom_id=custom_id)
        if token.kind is Kind.STRING and token.value.strip():
            self._advance()
            return ast.Field(name=token.value.lower(), pos=token.pos)
        if token.kind is Kind.WORD and token.value.lower() not in KEYWORDS:
            self._check_not_reserved(token)
            self._advance()
            return ast.Field(name=token.value.lower(), pos=token.pos)
        raise self._fail("a field name")

    def _operator(self) -> str:
        token = self._token
        if token.kind is Kind.OP:
            self._advance()
            return token.value
        if token.is_word("in", "changed"):
            self._advance()
            return token.value.lower()
        if token.is_word("not"):
            self._advance()
            if not self._token.is_word("in"):
                raise self._fail("'IN' after 'NOT'")
            self._advance()
            return "not in"
        if token.is_word("is"):
            self._advance()
            if self._token.is_word("not"):
                self._advance()
                return "is not"
            return "is"
        if token.is_word("was"):
            self._advance()
            op = "was"
            if self._token.is_word("not"):
                self._advance()
                op = "was not"
            if self._token.is_word("in"):
                self._advance()
                op += " in"
            return op
        raise self._fail("operator")

    def _predicates(self, op: str) -> tuple[ast.HistoryPredicate, ...]:
        allowed = HISTORY_PREDICATES.get(op, ())
        predicates = []
        while self._token.kind is Kind.WORD:
            token = self._token
            kind = token.value.lower()
            if kind in ALL_PREDICATES and kind not in allowed:
                raise ast.JqlError(
                    f"The operator {_quoted_upper(op)} does not support the history predicate "
                    f"{_quoted_upper(kind)}",
                    token.pos,
                )
            if kind not in ALL_PREDICATES:
                if allowed and kind not in LOGICAL_WORDS:
                    raise ast.JqlError(f"Unknown history predicate '{token.text}'", token.pos)
                break
            self._advance()
            predicates.append(
                ast.HistoryPredicate(
                    kind=kind, operand=self._predicate_operand(kind), pos=token.pos
                )
            )
        return tuple(predicates)

    def _predicate_operand(self, kind: str) -> ast.Operand:
        after = f"after {_quoted_upper(kind)}"
        if kind == "during":
            if self._token.kind is not Kind.LPAREN:
                raise self._fail(f"'(' {after}")
            dates = self._list()
            if len(dates.items) != 2:
                count = len(dates.items)
                message = (
                    f"The history predicate 'DURING' expects exactly two dates but got {count}"
                )
                raise ast.JqlError(message, dates.pos)
            return dates
        if kind == "by":
            if self._token.kind is Kind.LPAREN:
                return self._list()
            return self._single(f"either a value, list or function {after}", empty=False)
        return self._single(f"either a value or function {after}", empty=kind in ("from", "to"))

    def _order_by(self) -> tuple[ast.OrderBy, ...]:
        self._advance()  # ORDER
        if not self._token.is_word("by"):
            raise ast.JqlError("Expecting 'BY' after 'ORDER'", self._token.pos)
        self._advance()
        items = []
        while True:
            field = self._field()
            direction = self._token.value.lower() if self._token.is_word("asc", "desc") else None
            if direction:
                self._advance()
            items.append(ast.OrderBy(field=field, descending=direction == "desc"))
            if self._token.kind is Kind.COMMA:
                self._advance()
                continue
            if self._token.kind is Kind.EOF:
                return tuple(items)
            raise self._fail(
                "',' or end of query" if direction else "either 'ASC', 'DESC', ',' or end of query"
            )

    # -- operands -----------------------------------------------------------------------

    def _operand_for(self, op: str) -> ast.Operand:
        token = self._token
        if op in ("is", "is not"):
            if token.is_word("empty", "null"):
                self._advance()
                return ast.Empty(pos=token.pos)
            raise self._fail(f"EMPTY or NULL after {_quoted_upper(op)}")
        if op in LIST_OPERATORS:
            if token.kind is Kind.LPAREN:
                return self._list()
            if (
                token.kind is Kind.WORD
                and self._peek().kind is Kind.LPAREN
                and not token.is_word(*KEYWORDS)
            ):
                return self._function()
            raise self._fail(f"a list or function after {_quoted_upper(op)}")
        if token.kind is Kind.LPAREN:
            raise ast.JqlError(
                f"The operator {_quoted_upper(op)} does not support lists", token.pos
            )
        return self._single("either a value, list or function", empty=True)

    def _single(self, expecting: str, *, empty: bool) -> ast.Operand:
        """A quoted or unquoted value, a function call, or (if `empty`) EMPTY/NULL."""
        token = self._token
        if token.kind is Kind.STRING:
            self._advance()
            return ast.Literal(value=token.value, quoted=True, pos=token.pos)
        if token.kind is not Kind.WORD:
            raise self._fail(expecting)
        if token.is_word("empty", "null") and empty:
            self._advance()
            return ast.Empty(pos=token.pos)
        if token.value.lower() in KEYWORDS:
            raise self._fail(expecting)
        if self._peek().kind is Kind.LPAREN:
            return self._function()
        self._check_not_reserved(token)
        self._advance()
        return ast.Literal(value=token.value, quoted=False, pos=token.pos)

    def _list(self) -> ast.ListValue:
        start = self._advance()  # (
        items = [self._single("either a value or function", empty=True)]
        while self._token.kind is Kind.COMMA:
            self._advance()
            items.append(self._single("either a value or function", empty=True))
        self._expect_close(otherwise="',' or ')'")
        return ast.ListValue(items=tuple(items), pos=start.pos)

    def _function(self) -> ast.FunctionCall:
        name = self._advance()
        self._advance()  # (
        args: list[str] = []
        if self._token.kind is not Kind.RPAREN:
            args.append(self._argument())
            while self._token.kind is Kind.COMMA:
                self._advance()
                args.append(self._argument())
        self._expect_close(otherwise="',' or ')'")
        return ast.FunctionCall(name=name.value.lower(), args=tuple(args), pos=name.pos)

    def _argument(self) -> str:
        token = self._token
        if token.kind is Kind.STRING:
            self._advance()
            return token.value
        if token.kind is Kind.WORD and token.value.lower() not in KEYWORDS:
            self._check_not_reserved(token)
            self._advance()
            return token.value
        raise self._fail("a function argument")

    @staticmethod
    def _check_not_reserved(token: Token) -> None:
        if token.value.lower() in RESERVED_WORDS:
            raise ast.JqlError(f"Reserved word '{token.text}' must be quoted", token.pos)


def _flatten(kind: type[ast.And] | type[ast.Or], clauses: list[ast.Clause]) -> ast.Clause:
    """One And/Or over all operands: `a AND (b AND c)` is `And(a, b, c)`."""
    if len(clauses) == 1:
        return clauses[0]
    flat: list[ast.Clause] = []
    for clause in clauses:
        if isinstance(clause, ast.And | ast.Or) and type(clause) is kind:
            flat.extend(clause.clauses)
        else:
            flat.append(clause)
    return kind(clauses=tuple(flat))
