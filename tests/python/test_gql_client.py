"""The `gql` client (HTTP and graphql-transport-ws) against a running Tenfold."""

import asyncio

import pytest
from gql import Client, gql
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

SIGN_UP = """
    mutation($i: SignUpInput!) {
      signUp(input: $i) { accessToken organization { id name plan } }
    }
"""
CREATE_KEY = """
    mutation($n: String!) { createApiKey(input: {name: $n, scopes: ["org:read"]}) { apiKey { id prefix } secret } }
"""
AUDIT = gql("subscription { auditEvents { action target } }")


def with_vars(query: str, variables: dict):
    """A fresh request with variables (gql 4 takes them on the request object)."""
    request = gql(query)
    request.variable_values = variables
    return request


def http_client(base_url: str, token: str | None = None, schema: bool = False) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return Client(transport=AIOHTTPTransport(url=f"{base_url}/graphql", headers=headers), fetch_schema_from_transport=schema)


async def sign_up(base_url: str, email: str) -> str:
    async with http_client(base_url) as session:
        result = await session.execute(
            with_vars(SIGN_UP, {"i": {"email": email, "password": "correct horse battery", "organizationName": "Py Co"}})
        )
    assert result["signUp"]["organization"]["plan"] == "FREE"
    return result["signUp"]["accessToken"]


@pytest.mark.asyncio
async def test_http_queries_and_mutations_validate_against_the_fetched_schema(base_url, fresh_email):
    token = await sign_up(base_url, fresh_email)
    # fetch_schema_from_transport: the client introspects and validates
    # every document locally against our schema (dev mode has introspection).
    async with http_client(base_url, token, schema=True) as session:
        org = await session.execute(gql("{ organization { name quotas { storageBytes maxMembers } } }"))
        assert org["organization"]["name"] == "Py Co"
        key = await session.execute(with_vars(CREATE_KEY, {"n": "from python"}))
        assert key["createApiKey"]["secret"].startswith(key["createApiKey"]["apiKey"]["prefix"])


@pytest.mark.asyncio
async def test_errors_carry_codes(base_url):
    async with http_client(base_url) as session:
        with pytest.raises(TransportQueryError) as err:
            await session.execute(gql("{ me { user { id } } }"))
    assert err.value.errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.asyncio
async def test_subscription_over_graphql_transport_ws(base_url, fresh_email):
    token = await sign_up(base_url, fresh_email)
    ws_url = base_url.replace("http://", "ws://") + "/graphql"
    transport = WebsocketsTransport(
        url=ws_url, init_payload={"authorization": f"Bearer {token}"}, subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL]
    )
    async with Client(transport=transport) as ws_session:
        targets = []

        async def listen():
            async for event in ws_session.subscribe(AUDIT):
                targets.append(event["auditEvents"]["target"])

        listener = asyncio.create_task(listen())
        async with http_client(base_url, token) as session:
            # The protocol has no "subscribed" ack: probe until an event arrives.
            for i in range(100):
                await session.execute(with_vars(CREATE_KEY, {"n": f"probe-{i}"}))
                await asyncio.sleep(0.1)
                if targets:
                    break
            assert targets, "the subscription never delivered an event"
            ids = []
            for name in ("one", "two"):
                key = await session.execute(with_vars(CREATE_KEY, {"n": name}))
                ids.append(key["createApiKey"]["apiKey"]["id"])
        wanted = [f"api_key:{raw_id(i)}" for i in ids]
        for _ in range(100):
            if all(w in targets for w in wanted):
                break
            await asyncio.sleep(0.1)
        listener.cancel()
    positions = [targets.index(w) for w in wanted]
    assert positions == sorted(positions), "events arrive in order"


def raw_id(global_id: str) -> str:
    """The UUID inside a global id (base64url of "Type:uuid")."""
    import base64

    padded = global_id + "=" * (-len(global_id) % 4)
    return base64.urlsafe_b64decode(padded).decode().split(":", 1)[1]


@pytest.mark.asyncio
async def test_subscription_refuses_a_connection_without_credentials(base_url):
    ws_url = base_url.replace("http://", "ws://") + "/graphql"
    transport = WebsocketsTransport(url=ws_url, init_payload={}, subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL])
    with pytest.raises(Exception):
        async with Client(transport=transport) as ws_session:
            async for _ in ws_session.subscribe(AUDIT):
                pass
