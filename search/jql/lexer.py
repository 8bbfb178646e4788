"""JQL tokens: words, quoted strings, `cf[id]`, operators and punctuation.

The lexer knows no keywords: `and`, `in`, `empty` are plain words here and the parser
gives them meaning by context, case-insensitively. As in Jira, a reserved word (the
keywords and Jira's longer list below) must be quoted to serve as a field name or value.
"""

from bisect import bisect_right
from dataclasses import dataclass
from enum import Enum

from search.jql.ast import JqlError, Position

# Punctuation that ends an unquoted word; anything else outside WORD_PUNCTUATION,
# letters, digits and whitespace is a reserved character (`#`, `$`, `;`, `[` ...).
WORD_PUNCTUATION = frozenset("_.-/:+*@")

OPERATORS = ("!=", "!~", ">=", "<=", "&&", "||", "=", ">", "<", "~", "!", "(", ")", ",")

# Jira's reserved words: unquoted, they are an error wherever a field name or a value is
# expected (https://support.atlassian.com/jira-software-cloud/docs/jql-keywords/ and
# Jira's JqlStringSupportImpl.RESERVED_WORDS), plus the JQL keywords themselves.
# Whitespace-separated word lists read better than 180 quoted strings.
KEYWORDS = frozenset(
    """and or not in is was changed empty null order by asc desc
    from to after before on during""".split()  # noqa: SIM905
)
RESERVED_WORDS = KEYWORDS | frozenset(
    """a an abort access add alias all alter any are as audit avg begin between boolean
    break byte catch cf char character check checkpoint collate collation column commit
    connect continue count create current date decimal declare decrement default
    defaults define delete delimiter difference distinct divide do double drop else
    encoding end equals escape exclusive exec execute exists explain false fetch file
    field first float for function go goto grant greater group having identified if
    immediate increment index initial inner inout input insert int integer intersect
    intersection into isempty isnull join last left less like limit lock long max min
    minus mode modify modulo more multiply next noaudit notin nowait number object of
    option outer output power previous prior privileges public raise raw remainder
    rename resume return returns revoke right row rowid rownum rows select session set
    share size sqrt start strict string subtract sum synonym table then trans
    transaction trigger true uid union unique update user validate values view when
    whenever where while with""".split()  # noqa: SIM905
)

ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}


class Kind(Enum):
    WORD = "word"
    STRING = "string"
    CUSTOM_FIELD = "custom field"  # cf[10001]; value holds the digits
    OP = "operator"  # = != > >= < <= ~ !~
    AND = "&&"
    OR = "||"
    BANG = "!"
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    EOF = "end of query"


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str  # as written in the query (quotes included)
    value: str  # decoded: a string without quotes and escapes, a word as written
    pos: Position

    def is_word(self, *words: str) -> bool:
        """Whether this is an unquoted word equal (case-insensitively) to one of words."""
        return self.kind is Kind.WORD and self.value.lower() in words

    def describe(self) -> str:
        """The token as error messages quote it: `'foo'` or `end of query`."""
        return "end of query" if self.kind is Kind.EOF else f"'{self.text}'"


def is_word_char(char: str) -> bool:
    return char.isalnum() or char in WORD_PUNCTUATION


def is_plain_word(text: str) -> bool:
    """Whether text can be written unquoted and reads back as the same word."""
    return bool(text) and all(is_word_char(c) for c in text) and text.lower() not in RESERVED_WORDS


class _Positions:
    def __init__(self, text: str) -> None:
        self._line_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]

    def at(self, offset: int) -> Position:
        line = bisect_right(self._line_starts, offset)
        return Position(line=line, column=offset - self._line_starts[line - 1] + 1, offset=offset)


def jql_tokens(text: str) -> list[Token]:
    """Split a query into tokens ending with an EOF token; JqlError on bad characters."""
    positions = _Positions(text)
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "\"'":
            i = _string(text, i, positions, tokens)
        elif is_word_char(char):
            i = _word(text, i, positions, tokens)
        else:
            operator = next((op for op in OPERATORS if text.startswith(op, i)), None)
            if operator is None:
                raise JqlError(f"Unexpected character '{char}'", positions.at(i))
            tokens.append(
                Token(_OPERATOR_KINDS.get(operator, Kind.OP), operator, operator, positions.at(i))
            )
            i += len(operator)
    tokens.append(Token(Kind.EOF, "", "", positions.at(len(text))))
    return tokens


_OPERATOR_KINDS = {
    "&&": Kind.AND,
    "||": Kind.OR,
    "!": Kind.BANG,
    "(": Kind.LPAREN,
    ")": Kind.RPAREN,
    ",": Kind.COMMA,
}


def _word(text: str, start: int, positions: _Positions, tokens: list[Token]) -> int:
    end = start
    while end < len(text) and is_word_char(text[end]):
        end += 1
    word = text[start:end]
    if word.lower() == "cf" and text.startswith("[", end):
        return _custom_field(text, start, end + 1, positions, tokens)
    tokens.append(Token(Kind.WORD, word, word, positions.at(start)))
    return end


def _custom_field(
    text: str, start: int, digits_start: int, positions: _Positions, tokens: list[Token]
) -> int:
    end = digits_start
    while end < len(text) and text[end] in "0123456789":
        end += 1
    if end == digits_start:
        got = f"'{text[end]}'" if end < len(text) else "end of query"
        raise JqlError(f"Expecting a custom field id in 'cf[...]' but got {got}", positions.at(end))
    if not text.startswith("]", end):
        got = f"'{text[end]}'" if end < len(text) else "end of query"
        raise JqlError(f"Expecting ']' after the custom field id but got {got}", positions.at(end))
    tokens.append(
        Token(Kind.CUSTOM_FIELD, text[start : end + 1], text[digits_start:end], positions.at(start))
    )
    return end + 1


def _string(text: str, start: int, positions: _Positions, tokens: list[Token]) -> int:
    quote = text[start]
    chars: list[str] = []
    i = start + 1
    while True:
        if i >= len(text) or text[i] in "\r\n":
            raise JqlError("Unterminated string", positions.at(start))
        char = text[i]
        if char == quote:
            break
        if char != "\\":
            chars.append(char)
            i += 1
            continue
        escape = text[i + 1 : i + 2]
        if escape in ESCAPES:
            chars.append(ESCAPES[escape])
            i += 2
        elif escape == "u" and _is_hex4(text[i + 2 : i + 6]):
            chars.append(chr(int(text[i + 2 : i + 6], 16)))
            i += 6
        else:
            sequence = text[i : i + 6] if escape == "u" else text[i : i + 2]
            raise JqlError(f"Illegal escape sequence '{sequence}'", positions.at(i))
    tokens.append(
        Token(
            Kind.STRING, text[start : i + 1], _join_surrogates("".join(chars)), positions.at(start)
        )
    )
    return i + 1


def _is_hex4(digits: str) -> bool:
    return len(digits) == 4 and all(c in "0123456789abcdefABCDEF" for c in digits)


def _join_surrogates(value: str) -> str:
    # `\ud83d\ude00` written as two escapes is one character, as in JSON and Java.
    if not any("\ud800" <= c <= "\udfff" for c in value):
        return value
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")
