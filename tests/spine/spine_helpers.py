"""Making companies, users and API keys for the spine's tests."""

from __future__ import annotations

from dataclasses import dataclass

from mailbeacon.crm.companies import create_company
from mailbeacon.crm.users import create_api_key, create_user
from mailbeacon.store import Database


@dataclass
class Account:
    company_id: int
    user_id: int
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


class Accounts:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._n = 0

    async def company(self, plan: str = "trial", name: str = "Acme") -> int:
        async with self.db.begin() as conn:
            return await create_company(conn, name, plan)

    async def user(self, company_id: int, role: str = "administrator") -> Account:
        self._n += 1
        async with self.db.begin() as conn:
            user_id = await create_user(
                conn,
                company_id=company_id,
                email=f"user{self._n}-{role}@c{company_id}.example.com",
                role=role,
                password="correct horse battery",
            )
            key = await create_api_key(conn, user_id)
        return Account(company_id, user_id, key)
