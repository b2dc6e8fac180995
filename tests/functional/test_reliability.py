# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""The reliability suite's fast part, run by CI with the functional tests.

Everything in ``tests/reliability`` but the load (200 servers, about 15
minutes), which ``tox -e reliability`` runs with the rest, three times.
"""

from tests.reliability.test_bad_input import TestBadInput  # noqa: F401
from tests.reliability.test_faults import TestApiFaults  # noqa: F401
from tests.reliability.test_faults import TestClientKilled  # noqa: F401
from tests.reliability.test_faults import TestHostFaults  # noqa: F401
from tests.reliability.test_faults import TestInterrupt  # noqa: F401
from tests.reliability.test_faults import TestLostAnswers  # noqa: F401
from tests.reliability.test_faults import \
    TestNovaConfirmsByItself  # noqa: F401
from tests.reliability.test_journal import TestJournalDamage  # noqa: F401
from tests.reliability.test_security import TestHostileNames  # noqa: F401
from tests.reliability.test_security import \
    TestMemberForbidden  # noqa: F401
from tests.reliability.test_security import TestSecrets  # noqa: F401
