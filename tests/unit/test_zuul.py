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

"""The Zuul jobs (.zuul.yaml) stay valid though no Zuul runs them here."""

import configparser
import os

import testtools
import yaml

REPO = os.path.join(os.path.dirname(__file__), '..', '..')
# Parents and jobs defined by openstack-zuul-jobs and devstack.
UPSTREAM = {'openstack-tox-functional', 'devstack-tox-functional',
            'openstack-tox-pep8', 'openstack-tox-py311',
            'openstack-tox-docs'}


def _tox_envs():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(os.path.join(REPO, 'tox.ini'))
    return {s[len('testenv:'):] for s in parser.sections()
            if s.startswith('testenv:')} | {'py3', 'py311'}


class TestZuul(testtools.TestCase):

    def setUp(self):
        super().setUp()
        with open(os.path.join(REPO, '.zuul.yaml')) as f:
            self.config = yaml.safe_load(f)
        self.jobs = {item['job']['name']: item['job']
                     for item in self.config if 'job' in item}
        self.project = next(item['project'] for item in self.config
                            if 'project' in item)

    def test_the_two_jobs_and_their_parents(self):
        self.assertEqual('openstack-tox-functional',
                         self.jobs['osc-migrate-plus-functional']['parent'])
        devstack = self.jobs['osc-migrate-plus-functional-devstack']
        self.assertEqual('devstack-tox-functional', devstack['parent'])
        self.assertEqual('fake', devstack['vars']['devstack_localrc'][
            'VIRT_DRIVER'])
        self.assertEqual(3, devstack['vars']['devstack_localrc'][
            'NUMBER_FAKE_NOVA_COMPUTE'])
        self.assertEqual('devstack-admin',
                         devstack['vars']['tox_environment']['OS_CLOUD'])

    def test_tox_envs_exist_and_pass_the_cloud_through(self):
        envs = _tox_envs()
        for name, job in self.jobs.items():
            env = job['vars']['tox_envlist']
            self.assertIn(env, envs, name)
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(os.path.join(REPO, 'tox.ini'))
        passed = parser['testenv:functional-external']['pass_env'].split()
        self.assertIn('OS_*', passed)

    def test_pipelines_name_known_jobs(self):
        for pipeline in ('check', 'gate'):
            for job in self.project[pipeline]['jobs']:
                self.assertIn(job, set(self.jobs) | UPSTREAM, pipeline)
        for job in self.jobs.values():
            self.assertIn(job['parent'], UPSTREAM)
