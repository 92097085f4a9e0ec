"""Secret ACLs in the secret store: READ < WRITE < MANAGE per scope, by user, service
principal or group name; admins hold MANAGE everywhere; endpoint configs need READ on every
scope they reference."""

from __future__ import annotations

import pytest

from ladle.control.secrets import SecretStore
from ladle.control.store import Store
from ladle.schemas import endpoints as s
from ladle.schemas.errors import ApiError
from ladle.schemas.principal import Principal

ADMIN = Principal("admin", is_admin=True, groups=frozenset({"users", "admins"}))
ALICE = Principal("alice", groups=frozenset({"users"}))
BOB = Principal("bob", groups=frozenset({"users"}))
BOB_IN_ML = Principal("bob", groups=frozenset({"users", "ml"}))
BOT = Principal("etl-bot", kind="service_principal", groups=frozenset({"users"}))


@pytest.fixture
def store(tmp_path):
    return SecretStore(Store(f"sqlite:///{tmp_path}/ladle.db"), tmp_path)


def _code(fn, *args) -> tuple[str, int]:
    with pytest.raises(ApiError) as e:
        fn(*args)
    return e.value.error_code, e.value.status


def test_creator_holds_manage_and_others_nothing(store):
    store.create_scope(ALICE, "a")
    store.put(ALICE, "a", "k", "v")
    assert store.list_acls(ALICE, "a") == [{"principal": "alice", "permission": "MANAGE"}]
    assert store.list_secrets(ALICE, "a")[0]["key"] == "k"
    assert [x["name"] for x in store.list_scopes(ALICE)] == ["a"]
    assert store.list_scopes(BOB) == []                           # not even the name
    assert _code(store.list_secrets, BOB, "a") == ("PERMISSION_DENIED", 403)
    assert _code(store.put, BOB, "a", "k2", "v") == ("PERMISSION_DENIED", 403)
    assert _code(store.delete, BOB, "a", "k") == ("PERMISSION_DENIED", 403)
    assert _code(store.list_acls, BOB, "a") == ("PERMISSION_DENIED", 403)
    assert _code(store.put_acl, BOB, "a", "bob", "MANAGE") == ("PERMISSION_DENIED", 403)
    assert _code(store.delete_scope, BOB, "a") == ("PERMISSION_DENIED", 403)
    assert _code(store.list_secrets, BOB, "nope") == ("RESOURCE_DOES_NOT_EXIST", 404)
    # the admin holds MANAGE on every scope without an entry
    assert [x["name"] for x in store.list_scopes(ADMIN)] == ["a"]
    store.put_acl(ADMIN, "a", "ops", "READ")
    assert store.get_acl(ADMIN, "a", "ops") == {"principal": "ops", "permission": "READ"}


@pytest.mark.parametrize(("level", "can_list", "can_write", "can_manage"), [
    ("READ", True, False, False), ("WRITE", True, True, False), ("MANAGE", True, True, True)])
def test_each_level_allows_exactly_its_operations(store, level, can_list, can_write, can_manage):
    store.create_scope(ALICE, "a")
    store.put(ALICE, "a", "k", "v")
    store.put_acl(ALICE, "a", "bob", level)

    def allowed(fn, *args) -> bool:
        try:
            fn(*args)
            return True
        except ApiError as e:
            assert e.status == 403, e.message
            return False

    assert allowed(store.list_secrets, BOB, "a") is can_list
    assert [x["name"] for x in store.list_scopes(BOB)] == ["a"]
    assert allowed(store.put, BOB, "a", "k2", "v2") is can_write
    assert allowed(store.delete, BOB, "a", "k") is can_write
    assert allowed(store.list_acls, BOB, "a") is can_manage
    assert allowed(store.get_acl, BOB, "a", "alice") is can_manage
    assert allowed(store.put_acl, BOB, "a", "carol", "READ") is can_manage
    assert allowed(store.delete_scope, BOB, "a") is can_manage


def test_groups_service_principals_and_the_highest_grant(store):
    store.create_scope(ALICE, "a")
    store.put_acl(ALICE, "a", "ml", "WRITE")
    store.put_acl(ALICE, "a", "bob", "READ")
    assert _code(store.put, BOB, "a", "k", "v") == ("PERMISSION_DENIED", 403)   # READ only
    store.put(BOB_IN_ML, "a", "k", "v")                                       # WRITE through `ml`
    assert _code(store.list_secrets, BOT, "a")[1] == 403
    store.put_acl(ALICE, "a", "users", "READ")                                 # everyone
    assert store.list_secrets(BOT, "a")[0]["key"] == "k"
    store.put_acl(ALICE, "a", "bob", "MANAGE")                                 # overwrites READ
    assert store.get_acl(BOB, "a", "bob")["permission"] == "MANAGE"
    store.delete_acl(ALICE, "a", "bob")
    assert _code(store.get_acl, ALICE, "a", "bob") == ("RESOURCE_DOES_NOT_EXIST", 404)
    assert _code(store.delete_acl, ALICE, "a", "bob") == ("RESOURCE_DOES_NOT_EXIST", 404)


def test_initial_manage_principal_users_and_deleting_a_scope_forgets_its_acls(store):
    store.create_scope(ALICE, "shared", "users")
    assert store.list_acls(BOB, "shared") == [{"principal": "users", "permission": "MANAGE"}]
    store.put_acl(BOB, "shared", "bob", "READ")
    store.delete_scope(BOB, "shared")
    assert store.store.secret_acl_rows() == []
    store.create_scope(ALICE, "shared")                       # the same name again: a new scope
    assert store.list_acls(ALICE, "shared") == [{"principal": "alice", "permission": "MANAGE"}]
    assert _code(store.list_secrets, BOB, "shared")[1] == 403


def test_endpoint_config_needs_read_on_every_referenced_scope(store):
    store.create_scope(ALICE, "llm")
    store.put(ALICE, "llm", "openai", "sk-1")
    cfg = s.EndpointCoreConfigInput.model_validate({"served_entities": [
        {"entity_name": "m", "entity_version": "1", "environment_vars": {"A": "plain"}},
        {"external_model": {"name": "gpt", "provider": "openai", "task": "llm/v1/chat",
                            "openai_config": {"openai_api_key": "{{secrets/llm/openai}}"}}}]})
    store.check_references(ALICE, cfg)
    store.check_references(ADMIN, cfg)
    with pytest.raises(ApiError) as e:
        store.check_references(BOB, cfg)
    assert e.value.error_code == "PERMISSION_DENIED" and e.value.status == 403
    assert "'llm'" in e.value.message
    assert e.value.message.startswith("config.served_entities[1].external_model.openai_config.openai_api_key:")
    store.put_acl(ALICE, "llm", "bob", "READ")
    store.check_references(BOB, cfg)
    env = {"served_entities": [{"environment_vars": {"K": "{{ secrets/ghost/k }}"}}]}
    with pytest.raises(ApiError) as e:                         # a scope that does not exist
        store.check_references(BOB, env)
    assert e.value.status == 403 and "'ghost'" in e.value.message


def test_another_servers_grant_is_seen_without_waiting_for_a_resync(tmp_path):
    """ACLs are kept in memory; a refusal reads them again first, so a grant made on another
    server sharing the database takes effect at once (a revocation at the next reload)."""
    db = Store(f"sqlite:///{tmp_path}/ladle.db")
    here, there = SecretStore(db, tmp_path), SecretStore(db, tmp_path)
    here.create_scope(ALICE, "a")
    assert _code(here.list_secrets, BOB, "a")[1] == 403
    there.put_acl(ALICE, "a", "bob", "READ")
    assert here.list_secrets(BOB, "a") == []
    there.delete_acl(ALICE, "a", "bob")
    here.reload()                                              # StateSync, when the version moves
    assert _code(here.list_secrets, BOB, "a")[1] == 403


def test_scopes_of_an_earlier_ladle_keep_their_creator_as_manager(tmp_path):
    db = Store(f"sqlite:///{tmp_path}/ladle.db")
    db.insert_scope("old", "alice")                            # no ACL entry, as before ACLs
    store = SecretStore(db, tmp_path)
    assert store.list_acls(ALICE, "old") == [{"principal": "alice", "permission": "MANAGE"}]
    assert _code(store.list_secrets, BOB, "old")[1] == 403
