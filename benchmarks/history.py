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

"""Every run's raw figures, kept beside the page.

``runs/<UTC start>.json`` holds one run (the parts of one run appended with
``--append`` share its file); ``results.json`` is the latest. The page
compares the latest with the run before it.
"""

import json
import os
import typing as ty

RUNS = 'runs'


def run_name(results: dict) -> str:
    """The file of a run: its start, UTC, sortable (``2026-11-30T12-48-05Z``).

    Runs from before the history (no ``started``) are named by ``date``.
    """
    started = results.get('started')
    if not started:
        started = results['date'].replace(' UTC', '').replace(' ', 'T')
    return started.replace(':', '-').replace('+00-00', 'Z') + '.json'


def runs_dir(output: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(output)), RUNS)


def save(results: dict, output: str) -> str:
    """Write the run to ``output`` and to its file in the history."""
    directory = runs_dir(output)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, run_name(results))
    for target in (output, path):
        with open(target, 'w') as f:
            json.dump(results, f, indent=1)
            f.write('\n')
    return path


def previous(output: str, results: dict) -> ty.Optional[dict]:
    """The newest run in the history before this one, if any."""
    directory = runs_dir(output)
    mine = run_name(results)
    try:
        names = sorted(n for n in os.listdir(directory)
                       if n.endswith('.json') and n < mine)
    except FileNotFoundError:
        return None
    if not names:
        return None
    with open(os.path.join(directory, names[-1])) as f:
        return ty.cast(dict, json.load(f))
