"""Unity Catalog list pages: a page token is the offset of the next page."""

import pytest

from ladle.api.unity_catalog import _page
from ladle.schemas.errors import ApiError

ITEMS = [{"n": i} for i in range(5)]


def test_pages_follow_their_tokens_to_the_end():
    first = _page("registered_models", ITEMS, 2, None)
    assert first == {"registered_models": ITEMS[:2], "next_page_token": "2"}
    second = _page("registered_models", ITEMS, 2, first["next_page_token"])
    last = _page("registered_models", ITEMS, 2, second["next_page_token"])
    assert second["registered_models"] == ITEMS[2:4] and last == {"registered_models": ITEMS[4:]}


def test_no_limit_is_one_page_and_an_empty_list_is_fine():
    assert _page("model_versions", ITEMS, None, None) == {"model_versions": ITEMS}
    assert _page("model_versions", ITEMS, 0, None) == {"model_versions": ITEMS}
    assert _page("model_versions", [], None, None) == {"model_versions": []}


def test_a_token_not_given_by_the_server_is_a_400():
    with pytest.raises(ApiError) as e:
        _page("model_versions", ITEMS, 2, "abc")
    assert e.value.status == 400 and e.value.message.startswith("page_token:")
